"""Harvard DCE's Opencast user-action harvester: daily assets, the incremental schedule."""

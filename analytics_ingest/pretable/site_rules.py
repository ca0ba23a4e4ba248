"""A site's URL settings as its Matomo keeps them, so a pretable from our hits stores what the
tracker stored for that site, not what a new site would.

Matomo 4.12.3 builds them per site into the tracker cache
(``plugins/SitesManager/SitesManager.php``, ``recordWebsiteDataInCache``):

* ``sitesearch``: site search on (``1``) or off; off, a URL with ``?q=`` is a page view like any;
* ``sitesearch_keyword_parameters``: the site's list, or when it is empty the global one
  (``SitesManager.getSearchKeywordParametersGlobal``, an admin-only answer; never set, it is
  ``q,query,s,search,searchword,k,keyword``);
* ``excluded_parameters``: the site's list plus the global one
  (``SitesManager.getExcludedQueryParametersGlobal``), on top of the parameters every site strips
  (``PageUrl::getQueryParametersToExclude``: campaign parameters and ``[Tracker]
  url_query_parameter_to_exclude_from_url``), all compared in lower case.

A setting that cannot be read (a token without admin access) keeps its default and is named in
``unread``, as the archive check does for the exclusion lists.
"""

from __future__ import annotations

from ..matomo.api import MatomoApiError
from ..matomo.exclusions import read_global, setting_entries
from .matomo_rules import EXCLUDED_QUERY_PARAMETERS, SITE_SEARCH_KEYWORD_PARAMETERS, UrlRules


def url_rules_from_api(api, idsite: int) -> tuple[UrlRules, list[str]]:
    """The site's :class:`UrlRules` and the settings that could not be read (one phrase each)."""
    unread: list[str] = []
    try:
        site = api.call("SitesManager.getSiteFromId", idSite=int(idsite))
    except MatomoApiError as exc:
        return UrlRules(source=f"Matomo 4.12.3 defaults (site {idsite} unreadable)"), [f"site {idsite} ({exc})"]
    site = site if isinstance(site, dict) else {}
    search_on = str(site.get("sitesearch", "1")).strip() not in ("", "0", "False", "false")
    keywords = setting_entries(site.get("sitesearch_keyword_parameters"))
    if search_on and not keywords:
        answer = read_global(api, "SitesManager.getSearchKeywordParametersGlobal",
                             "global site search keyword parameters", unread)
        keywords = SITE_SEARCH_KEYWORD_PARAMETERS if answer is None or answer is False else setting_entries(answer)
    global_excluded = read_global(api, "SitesManager.getExcludedQueryParametersGlobal",
                                  "global excluded query parameters", unread)
    excluded = EXCLUDED_QUERY_PARAMETERS | {name.lower() for name in
                                            setting_entries(site.get("excluded_parameters"))
                                            + setting_entries(global_excluded)}
    rules = UrlRules(site_search=search_on, keyword_parameters=tuple(keywords), excluded=frozenset(excluded),
                     source=f"Matomo site {idsite}'s settings")
    return rules, unread


__all__ = ["url_rules_from_api"]

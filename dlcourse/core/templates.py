"""The one way to render a text from a Jinja2 template (HTML, Markdown, TOML, YAML, README).

Each package keeps its templates beside its code, in ``<package>/templates/``
(``dlcourse/insight/templates/report.html.j2``), so a package's texts travel
with it (a student kit ships only the student side's). Templates are read with
:class:`jinja2.PackageLoader`; HTML and XML templates are autoescaped, other
texts are not (a TOML or Markdown file is not HTML).
"""

from __future__ import annotations

import functools

import jinja2


@functools.lru_cache(maxsize=None)
def environment(package: str) -> jinja2.Environment:
    """The Jinja2 environment of ``package``'s ``templates/`` folder (``"dlcourse.insight"``)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "html.j2", "xml.j2"),
                                            default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,  # a missing value is an error, never an empty string in a page
        keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
        auto_reload=False)  # the templates are the package's: no stat of the file at every render


def render(package: str, name: str, /, **context) -> str:
    """``package``'s template ``name`` rendered with ``context``."""
    return environment(package).get_template(name).render(**context)

"""``nnconform matrix``: the suite against every backend, as one matrix of clauses by
backends (docs/matrix.md and a self-contained docs/matrix.html).

run.py runs each backend in its own process; table.py aggregates reports into cells;
render_md.py and render_html.py (with template.html, matrix.css, matrix.js) write the
outputs; command.py is the command line.
"""

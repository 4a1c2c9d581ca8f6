"""The query catalog: query files and their headers, parameters, the runner, ad-hoc SQL, scaffolds and checks."""

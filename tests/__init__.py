"""graphmint's tests, a package: pytest and the tests themselves import its modules under one name,
`tests.<module>`."""

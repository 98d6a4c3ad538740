"""`GET /dashboard`: the live page (accounts, quota, endpoints, requests on the state chart,
timelines, outcomes over time), its JSON API and its sign-in (`routes`, `live`, `chart`,
`auth`)."""

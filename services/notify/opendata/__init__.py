"""Open data (`GET /v1/open-data/awards.csv`, public): every finalized award as CSV, the file a
journalist or a transparency portal downloads. Streamed over keyset pages of one snapshot, so the
memory it takes does not grow with the number of awards."""

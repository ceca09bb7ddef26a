"""Results reporting: published numbers beside the user's, tables and plots of
every protocol. Sits above the engine (dassl knows nothing of it);
`parse_test_res.py` is its command line."""

#!/bin/sh
# The CCTV age vectors (testkit/age) through libst, as TAP.
exec "$ST_BUILD/tests/agevectors" "$ST_TESTKIT/age"

"""schemathesis over /openapi.json against a real server: no input, however malformed, gets a 5xx."""

import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import serve_copy


def test_schemathesis_finds_no_server_error_and_no_schema_violation(seeds_data, tmp_path):
    server = serve_copy(seeds_data, tmp_path)
    spec = httpx.get(f"{server.url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    try:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
             "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,"
             "content_type_conformance", "--max-examples", "15", "--seed", "1", "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)  # its cache stays out of the tree
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-4000:]
    generated = re.search(r"(\d+) generated", result.stdout)
    assert generated and int(generated.group(1)) >= 120, result.stdout[-2000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested and int(tested.group(1)) == operations, "every route is exercised"

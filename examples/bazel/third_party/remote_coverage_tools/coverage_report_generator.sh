#!/bin/sh
echo "coverage_report_generator: placeholder of examples/bazel/third_party/remote_coverage_tools; bazel coverage is not supported offline" >&2
exit 1

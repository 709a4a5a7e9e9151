#!/usr/bin/env bash
# Runs every test suite, each one even when an earlier one failed, with its own output as it
# comes; then prints a table of the suites and a last line `suites: N passed, N failed`.
# Exits 1 if any suite failed, 0 otherwise.
#
#   tests/run_all.sh
#
# The suites: ruff (lint, then the format check), the Python tests (pytest), the lab extension's
# lint and Jest tests, and the browser tests (pytest in ui-tests/, a process of their own).
set -u
cd "$(dirname "$0")/.." || exit 1

names=()
results=()
times=()

run() {
  local name=$1
  shift
  printf '\n===== %s: %s\n' "$name" "$*"
  local start=$SECONDS
  "$@"
  local code=$?
  names+=("$name")
  times+=("$((SECONDS - start)) s")
  if [ "$code" -eq 0 ]; then
    results+=("passed")
  else
    results+=("failed (exit $code)")
  fi
  printf '===== %s: %s\n' "$name" "${results[-1]}"
}

in_labextension() {
  (cd labextension && "$@")
}

run "ruff check" ruff check
# Python files only: ruff also formats the Python blocks of Markdown files, and the examples in
# README.md and docs/ are laid out by hand.
run "ruff format" ruff format --check --extend-exclude '*.md'
run "pytest" python -m pytest
run "jlpm lint" in_labextension jlpm lint
run "jlpm test" in_labextension jlpm test
run "ui-tests" python -m pytest ui-tests

passed=0
failed=0
printf '\n%-12s  %-20s  %s\n' "suite" "result" "time"
for i in "${!names[@]}"; do
  printf '%-12s  %-20s  %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}"
  if [ "${results[$i]}" = "passed" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

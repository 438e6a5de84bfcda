#!/usr/bin/env bash
# The dopt part of the GitHub Action (action.yml), kept in a script so it runs the same way on a
# laptop as in a workflow: `DOPT_PATHS=. ci/action-entrypoint.sh`.
#
# It runs `dopt check` twice: once with GitHub annotations on standard output (the runner turns
# `::warning file=...` lines into annotations on the pull request's diff), once writing SARIF for
# code scanning. Checking is fast and deterministic, so two runs agree and nothing is parsed here.
#
# Environment (all optional):
#   DOPT_PATHS             files or folders to check, separated by spaces or new lines (default: .)
#   DOPT_ARGS              extra options for `dopt check`, e.g. "--select DO1 --ignore DO100"
#   DOPT_SARIF_FILE        where to write the SARIF log (default: dopt.sarif)
#   DOPT_FAIL_ON_FINDINGS  "true" (default): exit 1 when there are findings; "false": exit 0
#   DOPT                   the dopt command (default: dopt)
#   GITHUB_OUTPUT          set by GitHub: receives sarif-file, findings and exit-code
#   GITHUB_STEP_SUMMARY    set by GitHub: receives a one-paragraph summary
#
# Exit status: 0 clean (or findings with DOPT_FAIL_ON_FINDINGS=false), 1 findings, 2 dopt could not
# check (bad option, unreadable or unparsable Dockerfile, no Dockerfile found).
set -uo pipefail

dopt_cmd=${DOPT:-dopt}
sarif=${DOPT_SARIF_FILE:-dopt.sarif}
fail_on_findings=${DOPT_FAIL_ON_FINDINGS:-true}

read -r -d '' -a paths <<<"${DOPT_PATHS:-.}" || true
read -r -d '' -a extra <<<"${DOPT_ARGS:-}" || true
[ ${#paths[@]} -gt 0 ] || paths=(.)

case "$fail_on_findings" in
  true | false) ;;
  *) echo "::error title=dopt::DOPT_FAIL_ON_FINDINGS must be true or false, not '$fail_on_findings'"; exit 2 ;;
esac

if ! command -v "$dopt_cmd" >/dev/null 2>&1; then
  echo "::error title=dopt::'$dopt_cmd' not found; install it with: pip install dockerfile-optimizer"
  exit 2
fi

annotations=$(mktemp)
sarif_errors=$(mktemp)
trap 'rm -f "$annotations" "$sarif_errors"' EXIT

# ${extra[@]+"${extra[@]}"}: an empty array under `set -u` on bash 3.2 (macOS runners).
"$dopt_cmd" check --output-format github ${extra[@]+"${extra[@]}"} -- "${paths[@]}" >"$annotations"
status=$?
cat "$annotations"

mkdir -p "$(dirname -- "$sarif")"
"$dopt_cmd" check --output-format sarif ${extra[@]+"${extra[@]}"} -- "${paths[@]}" >"$sarif" 2>"$sarif_errors"
sarif_status=$?
# Same check, same messages: show the second run's only if it ended differently.
[ "$sarif_status" -eq "$status" ] || cat "$sarif_errors" >&2

findings=$(grep -c '^::\(warning\|error\|notice\) ' "$annotations" || true)

if [ "$status" -ge 2 ] || [ "$sarif_status" -ge 2 ]; then
  result=2
  summary="dopt could not check every Dockerfile (see the log)."
elif [ "$findings" -gt 0 ]; then
  result=$([ "$fail_on_findings" = true ] && echo 1 || echo 0)
  summary="dopt found $findings problem(s) in Dockerfiles. Run \`dopt fix --diff\` to see the safe fixes, \`dopt fix\` to apply them."
else
  result=0
  summary="dopt found no problems in the Dockerfiles."
fi

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "sarif-file=$sarif"
    echo "findings=$findings"
    echo "exit-code=$result"
  } >>"$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### dopt\n\n%s\n' "$summary" >>"$GITHUB_STEP_SUMMARY"
fi
echo "$summary" >&2
exit "$result"

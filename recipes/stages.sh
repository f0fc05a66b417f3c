# Stage selection shared by every recipes/<name>/run.sh (sourced, not run). A recipe cds to the repository root
# and sources it with its own arguments:
#
#   . recipes/stages.sh "$@"
#
# It reads --stage N (first stage to run, default 1) and --stop-stage M (last, default 100), and defines
#   run_stage N NAME: true, printing "== stage N: NAME", when stage N is within them; used as
#   if run_stage 2 train; then ...; fi
# shellcheck shell=bash
stage=1
stop_stage=100
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) echo "usage: $0 [--stage N] [--stop-stage M]" >&2; exit 2 ;;
  esac
done
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ] && echo "== stage $1: $2"; }

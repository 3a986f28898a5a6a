#!/usr/bin/env bash
# Re-make a protocol's committed reference entries and reproduction from an empty cache, with this checkout:
#     leaderboard/remake.sh synthetic-v2 [OUT]      (default OUT: leaderboard/results)
# synthetic-v2 on a 2-core CPU: about 6 hours (prepare with 3 replicas ~55 min, INSA with 3 replicas and
# 4 budgets ~70 min, the defenses ~1 h each, reproduce all the rest). Under torchrun, or on a GPU, much less.
# Afterwards: python -m aipbench.reproduce.pins OUT PROTOCOL tests/data/pins-PROTOCOL.json, with the reason.
set -euo pipefail
P=${1:?protocol}; OUT=${2:-leaderboard/results}
A=("${PYTHON:-python}" -m aipbench)
step() { local t=$(date +%s); echo "== $(date +%T) $*"; "$@"; echo "== done in $(( $(date +%s) - t )) s"; }
R="$OUT/$P"; mkdir -p "$R"
if [ "$P" = synthetic-v2 ]; then REP=(--replicas 3); DR=(); else REP=(); DR=(--rankers alexrank,vbpr,dvbpr); fi
step "${A[@]}" prepare "$P" "${REP[@]}"
step "${A[@]}" evaluate submissions/insa --protocol "$P" --eps 4,8,16,32 "${REP[@]}" --out "$R/insa.json"
step "${A[@]}" evaluate submissions/noise --protocol "$P" "${REP[@]}" --out "$R/noise.json"
for s in expa c-sema hook-copy taamr-fgsm taamr-pgd20 nes; do
  step "${A[@]}" evaluate "submissions/$s" --protocol "$P" --out "$R/$s.json"
done
step "${A[@]}" evaluate submissions/amr --protocol "$P" --rankers vbpr --out "$R/amr.json"
for d in bit-depth jpeg detector; do
  step "${A[@]}" evaluate "submissions/$d" --protocol "$P" "${DR[@]}" --out "$R/$d.json"
done
step "${A[@]}" reproduce all --protocol "$P" --results "$OUT"
step "${A[@]}" leaderboard check --results "$OUT"

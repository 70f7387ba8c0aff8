#!/usr/bin/env bash
# t2001: ledger verify = integrity + claims. Claims that hold pass verify; a
# failing claim or a changed study (STALE) each make verify exit 1 naming the
# claim; an expected failure (XFAIL) passes; --no-claims checks integrity
# alone. A deleted store-only artifact is a warning (claims read the results
# from the manifest, not from the store) and an error with --require-artifacts.
. "$(dirname "$0")/lib-cli.sh"

mkdir repo && cd repo && git init -q . || { bad "git init"; finish; }
# keep every output in the store only, so deleting an object loses it
expect_ok "init (outputs in the store only)" "$LEDGER" init --small-output-max 0
mkdir -p studies claims
cat > studies/tiny.json <<'JSON'
{"format": 1, "name": "tiny",
 "data": {"source": "synthetic", "synthetic": {"d": 16, "n_features": 32, "n_samples": 3000, "active_mean": 2, "seed": 3}},
 "sae": {"arch": "topk", "d_sae": 32, "k": 2}, "train": {"steps": 120, "batch": 64, "lr": 0.005},
 "seeds": [1, 2, 3]}
JSON
cat > claims/tiny.claims <<'CLAIMS'
claim trained-beats-random
  says "trained SAEs agree across seeds more than random-init ones"
  study tiny
  sample trained = seed.mmcs_mean where control=trained
  sample random = seed.mmcs_mean where control=random
  require diff(trained, random) > 0.05
end
claim everything-explained
  says "the SAE explains all the variance (documented as false)"
  study tiny
  sample ev = cell.explained_variance where control=trained
  require min(ev) > 0.9999
  expect fail
end
CLAIMS
expect_code 1 "verify before any run: claims MISSING" "$LEDGER" verify
grep_out "claim.*trained-beats-random.*MISSING" "names the claim and verdict"
expect_ok "verify --no-claims" "$LEDGER" verify --no-claims
expect_ok "run" "$LEDGER" run -q studies/tiny.json
expect_ok "verify: integrity and claims hold" "$LEDGER" verify --junit junit.xml
grep_err "2 claims: ok" "counts the claims"
"$PYTHON3" -c 'import xml.etree.ElementTree as E,sys; r=E.parse(sys.argv[1]).getroot(); assert len(r.findall(".//testcase"))==2 and not r.findall(".//failure")' junit.xml \
  && ok "JUnit XML written" || bad "JUnit XML"

# a claim that stops holding
cp claims/tiny.claims claims.bak
sed -i 's/> 0.05/> 5/' claims/tiny.claims
expect_code 1 "a failing claim fails verify" "$LEDGER" verify
grep_out "trained-beats-random.*FAIL" "names it"
cp claims.bak claims/tiny.claims
# the expected failure starts to hold: XPASS fails verify
sed -i 's/> 0.9999/> -100/' claims/tiny.claims
expect_code 1 "an expected failure that passes (XPASS) fails verify" "$LEDGER" verify
grep_out "everything-explained.*XPASS" "names it"
cp claims.bak claims/tiny.claims
# a changed study file
sed -i 's/"lr": 0.005/"lr": 0.006/' studies/tiny.json
expect_code 1 "a changed study makes verify fail (STALE)" "$LEDGER" verify
grep_out "STALE.*studies/tiny.json changed" "says why"
sed -i 's/"lr": 0.006/"lr": 0.005/' studies/tiny.json
expect_ok "restored study: fresh again" "$LEDGER" verify
# delete the evidence run's results.json object from the store
sha=$("$LEDGER" query "SELECT sha256 FROM artifacts WHERE name='results.json'" | tail -1)
obj=.ledger/store/objects/${sha:0:2}/${sha:2}
[ -f "$obj" ] && ok "results.json is a store object" || bad "no object $obj"
rm -f "$obj"
expect_ok "a deleted store-only artifact: claims still hold (they read the manifest)" "$LEDGER" verify
grep_out "warning: object: run 1-[0-9a-f]{12}: results.json .*missing from the local store" "warns, naming the artifact"
expect_code 1 "verify --require-artifacts fails on it" "$LEDGER" verify --require-artifacts
grep_out "results.json.*missing from the local store" "names it"
finish

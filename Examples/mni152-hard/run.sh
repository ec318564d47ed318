#!/bin/sh
# Hard MNI152 registration pairs (issue #27): the MNI152 2009a T1 at 2 mm deformed by a random
# smooth diffeomorphic field (as in Examples/mni152-registration) and, on top of it, rotated by up
# to ±10° per axis, scaled by up to ±6 % per axis and shifted by up to ±10 mm per axis (world mm,
# about the image centre; drawn from the seed); the "t2" pairs also remap the moving image to a
# T2-like contrast (CSF bright, WM dark). Labels (1 = GM, 2 = WM) follow the same total map.
# Each pair is registered back with `morphoseg register --optimize`; prints Dice (GM, WM),
# folding and time per pair.
#
#   sh Examples/mni152-hard/run.sh                          # seeds 1 2 3, t1 and t2 pairs
#   SEEDS=1 CONTRASTS=t2 sh Examples/mni152-hard/run.sh
#   REGISTER_ARGS="--diffeomorphic" sh Examples/mni152-hard/run.sh      # extra options for every pair
#   T2_ARGS="--similarity mi" sh Examples/mni152-hard/run.sh             # extra options for t2 pairs
set -eu
BIN=${MORPHOSEG:-.build/release/morphoseg}
DATA=${MNI152:-../shared/data/mni152}
OUT=${OUT:-runs/mni152-hard}
SEEDS=${SEEDS:-1 2 3}
CONTRASTS=${CONTRASTS:-t1 t2}
THREADS=${THREADS:-2}
ROTATE=${ROTATE:-10}
SCALE=${SCALE:-0.06}
SHIFT=${SHIFT:-10}
REGISTER_ARGS=${REGISTER_ARGS:-}
T2_ARGS=${T2_ARGS:-}

[ -x "$BIN" ] || swift build -c release --product morphoseg
mkdir -p "$OUT"
T1=$DATA/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz
GM=$DATA/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz
WM=$DATA/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz

for seed in $SEEDS; do
    for contrast in $CONTRASTS; do
        dir=$OUT/seed$seed-$contrast
        mkdir -p "$dir"
        "$BIN" register deform --image "$T1" --tissue-maps "$GM,$WM" --spacing 2 --seed "$seed" \
            --rotate "$ROTATE" --scale "$SCALE" --shift "$SHIFT" --contrast "$contrast" \
            --output-fixed "$dir/fixed.nii.gz" --output-moving "$dir/moving.nii.gz" \
            --output-fixed-labels "$dir/fixed_seg.nii.gz" --output-moving-labels "$dir/moving_seg.nii.gz" \
            --output-field "$dir/true_field.nii.gz" > "$dir/deform.txt"
        extra=$REGISTER_ARGS
        [ "$contrast" = t2 ] && extra="$extra $T2_ARGS"
        # shellcheck disable=SC2086
        "$BIN" register --optimize $extra --threads "$THREADS" --fixed "$dir/fixed.nii.gz" --moving "$dir/moving.nii.gz" \
            --fixed-labels "$dir/fixed_seg.nii.gz" --moving-labels "$dir/moving_seg.nii.gz" \
            --output-warped "$dir/warped.nii.gz" --output-labels "$dir/warped_seg.nii.gz" \
            --output-field "$dir/field.nii.gz" --json > "$dir/summary.json"
        jq -r --arg name "seed $seed $contrast" '"\($name): Dice GM \(.quality.dice_before[0].dice*1000|round/1000) → \(.quality.dice_after[0].dice*1000|round/1000), WM \(.quality.dice_before[1].dice*1000|round/1000) → \(.quality.dice_after[1].dice*1000|round/1000), folding \(.quality.jacobian.folding_fraction*100000|round/1000) %, \(.seconds*10|round/10) s wall, \(.cpu_seconds*10|round/10) s CPU"' "$dir/summary.json"
    done
done

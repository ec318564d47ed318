#!/bin/sh
# MNI152 joint study (see README.md): one axial 2 mm slice of the MNI152 2009a T1 and its GM/WM
# label map, deformed by random smooth diffeomorphic fields into TRAIN training copies (the first
# LABELLED of them labelled) and HELD held-out copies; then three runs on the same data:
# joint (joint.yaml), U-Net alone (unet-alone.yaml), registration alone (reg-alone.yaml) and,
# with RUNS including them, the U-Net alone as an augmented segmentation run (unet-augmented.yaml)
# and the joint run with the same augmentation (joint-augmented.yaml; joint-augmented-detached.yaml:
# the same with the coupling training the displacement network only; joint-augmented-warped.yaml:
# that plus labelled copies warped with their labels by the field as U-Net samples), each with SEEDS
# weight-initialisation seeds; then a table of the final held-out figures. A run name is the
# basename of its config here.
#
#   sh Examples/joint-mni152/run.sh                  # data + 3 runs × seed 0 (from the repository root)
#   SEEDS="0 1 2" sh Examples/joint-mni152/run.sh    # 3 seeds each
#   RUNS="joint unet-alone reg-alone unet-augmented" sh Examples/joint-mni152/run.sh
#   RUNS="joint-augmented unet-augmented" sh Examples/joint-mni152/run.sh
#   RUNS="joint-augmented joint-augmented-detached unet-augmented reg-alone" SEEDS="0 1 2" sh Examples/joint-mni152/run.sh
#   RUNS="joint-augmented-warped unet-augmented" SEEDS="0 1 2" sh Examples/joint-mni152/run.sh
# On a shared machine prefix the heavy commands with a lock: LOCK="flock /tmp/morphoseg-cpu.lock".
set -eu
BIN=${MORPHOSEG:-.build/release/morphoseg}
DATA=${MNI152:-../shared/data/mni152}
OUT=${OUT:-/tmp/jmni}
SEEDS=${SEEDS:-0}
RUNS=${RUNS:-joint unet-alone reg-alone}
AMPLITUDE=${AMPLITUDE:-4}
LOCK=${LOCK:-}
HERE=Examples/joint-mni152
D=$OUT/data      # the configs read $D/manifest.csv = /tmp/jmni/data/manifest.csv

for run in $RUNS; do
    [ -f "$HERE/$run.yaml" ] || { echo "run.sh: no config $HERE/$run.yaml for RUNS entry $run" >&2; exit 1; }
done
[ -x "$BIN" ] || $LOCK swift build -c release --product morphoseg
if [ ! -f "$D/manifest.csv" ]; then
    $LOCK swift "$HERE/make_slice.swift" "$DATA" "$D"
    # Training copies: seeds 1–10 (1 and 2 listed first: the labelled ones); held out: seeds 101–108.
    printf 'id,image,label,split\n' > "$D/manifest.csv.tmp"
    for seed in 1 2 3 4 5 6 7 8 9 10 101 102 103 104 105 106 107 108; do
        split=train; [ "$seed" -gt 100 ] && split=validation
        $LOCK "$BIN" register deform --image "$D/mni_t1_slice.nii.gz" --labels "$D/mni_seg_slice.nii.gz" \
            --max-displacement "$AMPLITUDE" --smoothing 15 --seed "$seed" \
            --output-fixed "$D/template.nii.gz" --output-moving "$D/copy$seed.nii.gz" \
            --output-moving-labels "$D/copy${seed}_seg.nii.gz" > /dev/null
        printf 'copy%s,copy%s.nii.gz,copy%s_seg.nii.gz,%s\n' "$seed" "$seed" "$seed" "$split" >> "$D/manifest.csv.tmp"
    done
    mv "$D/manifest.csv.tmp" "$D/manifest.csv"
fi
# The augmented U-Net baseline (a segmentation run): the 2 labelled copies and the 8 held out.
grep -e '^id,' -e '^copy1,' -e '^copy2,' -e ',validation$' "$D/manifest.csv" > "$D/seg-manifest.csv"

for run in $RUNS; do
    for seed in $SEEDS; do
        dir=$OUT/$run-s$seed
        [ -f "$dir/last.safetensors" ] && continue
        # The seed of the weight initialisation (and of the batch stream: data.seed stays 0, so
        # the split and the validation pairs do not move).
        sed "s/^  seed: 0  # training.seed/  seed: $seed  # training.seed/" "$HERE/$run.yaml" > "$OUT/$run-s$seed.yaml"
        $LOCK "$BIN" train --config "$OUT/$run-s$seed.yaml" --output "$dir" > "$dir.log" 2>&1
        # The trainer's own time ("done: N epochs in M:SS"): excludes waiting for LOCK.
        tail -1 "$dir.log" | sed -n 's/.* in \([0-9]*\):\([0-9]*\);.*/\1 \2/p' | awk '{ print $1 * 60 + $2 }' > "$dir/wall_seconds"
        echo "$run seed $seed: $(cat "$dir/wall_seconds") s"
    done
done

# The last validation line of every run (the last epoch): held-out seg Dice (GM, WM, mean), reg
# Dice of the warped labels, before registration, % folding, LCC similarity, the trainer's seconds.
printf '%-16s %4s %7s %7s %7s %8s %8s %8s %8s %6s\n' run seed segGM segWM segMean regDice before folding% similar wall_s
for run in $RUNS; do
    for seed in $SEEDS; do
        dir=$OUT/$run-s$seed
        [ -f "$dir/metrics.jsonl" ] || continue
        grep '"val.dice_mean"' "$dir/metrics.jsonl" | tail -1 | jq -r --arg run "$run" --arg seed "$seed" --arg wall "$(cat "$dir/wall_seconds" 2>/dev/null || echo -)" \
            '[$run, $seed, .["val.seg_dice.1"] // .["val.dice.1"], .["val.seg_dice.2"] // .["val.dice.2"],
              .["val.seg_dice_mean"] // .["val.dice_mean"], .["val.reg_dice_mean"] // "-", .["val.reg_dice_before"] // "-",
              .["val.folding_percent"] // "-", .["val.similarity"] // "-", $wall]
             | map(if type == "number" then (. * 1000 | round / 1000) else . end) | @tsv' \
            | awk -F'\t' '{ printf "%-16s %4s %7s %7s %7s %8s %8s %8s %8s %6s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }'
    done
done

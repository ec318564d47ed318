#!/bin/sh
# MNI152 registration example: the MNI152 2009a T1 at 2 mm is deformed by random smooth
# diffeomorphic fields (its GM/WM maps, as a label map, follow the same fields), and each deformed
# copy is registered back onto the original with `morphoseg register --optimize` (instance
# optimisation: 3 levels, LCC + λ·grad-l2, Adam on the field). Prints Dice before/after,
# folding and time per pair, then the means. With TRAIN=1 it also trains a 3D DisplacementNet
# (Configs/reg-mni152.yaml, 4 mm, synthetic pairs of the template; about 500 steps) unless
# runs/reg-mni152/best.safetensors exists, and registers the same pairs with it.
#
#   sh Examples/mni152-registration/run.sh            # seeds 1 2 3, 4-voxel (8 mm) deformations
#   SEEDS="1 2 3 4 5" AMPLITUDE=6 sh Examples/mni152-registration/run.sh
#   TRAIN=1 sh Examples/mni152-registration/run.sh    # + the trained network (run from the repository root)
set -eu
BIN=${MORPHOSEG:-.build/release/morphoseg}
DATA=${MNI152:-../shared/data/mni152}
OUT=${OUT:-runs/mni152-registration}
SEEDS=${SEEDS:-1 2 3}
AMPLITUDE=${AMPLITUDE:-4}
THREADS=${THREADS:-2}
TRAIN=${TRAIN:-0}
MODEL=runs/reg-mni152/best.safetensors

[ -x "$BIN" ] || swift build -c release --product morphoseg
mkdir -p "$OUT"
T1=$DATA/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz
GM=$DATA/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz
WM=$DATA/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz

for seed in $SEEDS; do
    dir=$OUT/seed$seed
    mkdir -p "$dir"
    "$BIN" register deform --image "$T1" --tissue-maps "$GM,$WM" --spacing 2 \
        --max-displacement "$AMPLITUDE" --seed "$seed" \
        --output-fixed "$dir/fixed.nii.gz" --output-moving "$dir/moving.nii.gz" \
        --output-fixed-labels "$dir/fixed_seg.nii.gz" --output-moving-labels "$dir/moving_seg.nii.gz" \
        --output-field "$dir/true_field.nii.gz" > /dev/null
    "$BIN" register --optimize --threads "$THREADS" --fixed "$dir/fixed.nii.gz" --moving "$dir/moving.nii.gz" \
        --fixed-labels "$dir/fixed_seg.nii.gz" --moving-labels "$dir/moving_seg.nii.gz" \
        --output-warped "$dir/warped.nii.gz" --output-labels "$dir/warped_seg.nii.gz" \
        --output-field "$dir/field.nii.gz" --json > "$dir/summary.json"
    if [ "$TRAIN" = 1 ] && [ ! -f "$MODEL" ]; then
        # The undeformed 2 mm template and its labels are the training subject.
        mkdir -p runs/mni152-registration/train
        cp "$dir/fixed.nii.gz" runs/mni152-registration/train/t1_2mm.nii.gz
        cp "$dir/fixed_seg.nii.gz" runs/mni152-registration/train/t1_2mm_seg.nii.gz
        printf 'image,label\nt1_2mm.nii.gz,t1_2mm_seg.nii.gz\n' > runs/mni152-registration/train/subjects.csv
        "$BIN" train --config Configs/reg-mni152.yaml --threads "$THREADS"
    fi
    if [ "$TRAIN" = 1 ]; then
        "$BIN" register --model "$MODEL" --threads "$THREADS" --fixed "$dir/fixed.nii.gz" --moving "$dir/moving.nii.gz" \
            --fixed-labels "$dir/fixed_seg.nii.gz" --moving-labels "$dir/moving_seg.nii.gz" \
            --output-warped "$dir/warped_model.nii.gz" --output-labels "$dir/warped_model_seg.nii.gz" \
            --json > "$dir/summary_model.json"
        jq -r --arg seed "$seed" '"seed \($seed) (network): Dice \(.quality.mean_dice_before*1000|round/1000) → \(.quality.mean_dice_after*1000|round/1000), folding \(.quality.jacobian.folding_fraction*100000|round/1000) %, \(.seconds*10|round/10) s wall, \(.cpu_seconds*10|round/10) s CPU"' "$dir/summary_model.json"
    fi
    jq -r --arg seed "$seed" '"seed \($seed) (optimisation): Dice \(.quality.mean_dice_before*1000|round/1000) → \(.quality.mean_dice_after*1000|round/1000), folding \(.quality.jacobian.folding_fraction*100000|round/1000) %, \(.seconds*10|round/10) s wall, \(.cpu_seconds*10|round/10) s CPU"' "$dir/summary.json"
done
[ "$TRAIN" = 1 ] && jq -s -r '"network, mean over \(length) pairs: Dice \((map(.quality.mean_dice_before)|add/length)*1000|round/1000) → \((map(.quality.mean_dice_after)|add/length)*1000|round/1000), folding \((map(.quality.jacobian.folding_fraction)|add/length)*100000|round/1000) %, \((map(.seconds)|add/length)*10|round/10) s wall per pair"' "$OUT"/seed*/summary_model.json
jq -s -r '"optimisation, mean over \(length) pairs: Dice \((map(.quality.mean_dice_before)|add/length)*1000|round/1000) → \((map(.quality.mean_dice_after)|add/length)*1000|round/1000), folding \((map(.quality.jacobian.folding_fraction)|add/length)*100000|round/1000) %, \((map(.seconds)|add/length)*10|round/10) s wall, \((map(.cpu_seconds)|add/length)*10|round/10) s CPU per pair"' "$OUT"/seed*/summary.json

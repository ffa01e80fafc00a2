#!/bin/bash
# One device session: GPU checks and timings. Every step is time-boxed; results land in $OUT.
# Carry (git-ignored, see README.md here): .devkit/site .devkit/minilm_fp16_trim.safetensors
# .devkit/gmask_bundle .devkit/stsb_test.tsv
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false TQDM_MININTERVAL=30
PY=python3
D=.devkit/stsb_test.tsv
step() { echo "=== $(date +%T) $1"; }
step env
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; free -g | head -2
  $PY -c "import jax, jaxlib, flax, optax, orbax.checkpoint as oc, transformers, torch, sys; print(sys.version); print('jax', jax.__version__, jaxlib.__version__, jax.devices()); print('flax', flax.__version__, 'optax', optax.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__, torch.cuda.is_available())"; } 2>&1 | tee $OUT/env.txt
$PY benchmarks/gpu/restore_fp16.py
export PYTHONPATH=$PWD:$PWD/.devkit/site
step "gmask: reference settings (500 samples x 100 steps), 64 MRPC pairs, batch 16, twin on cuda (float32 highest)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 250 $PY benchmarks/gmask.py --bundle .devkit/gmask_bundle --n 64 --batch-size 16 --single-pairs 2 --twin-pairs 3 --twin-device cuda --out $OUT/gmask_gpu.md 2>&1 | grep -v -E "Loading weights|it/s\]|s/it\]" | tail -30
step "bilrp minilm 256+256 (highest precision)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 170 $PY benchmarks/bilrp.py --data $D --torch-device cuda --lengths 256+256 --engines torch_loop,torch_vjp,torch_jvp,jaxsim_reverse,jaxsim_forward,jaxsim_auto --repeats 3 --no-memory --loop-max-seconds 15 --vjp-max-seconds 15 --out $OUT/bilrp_gpu_256.md 2>&1 | grep -v "Loading weights" | tail -12
step "embed gpu default precision"
timeout 50 $PY benchmarks/embed.py --data $D --torch-device cuda --repeats 5 --out $OUT/embed_gpu_default.md 2>&1 | tail -5
step done

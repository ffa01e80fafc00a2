#!/bin/bash
# One device session: GPU checks and timings. Every step is time-boxed; results land in $OUT.
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=python3
D=.devkit/stsb_test.tsv
step() { echo "=== $(date +%T) $1"; }
step env
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; free -g | head -2
  $PY -c "import jax, jaxlib, flax, optax, orbax.checkpoint as oc, transformers, torch, sys; print(sys.version); print('jax', jax.__version__, jaxlib.__version__, jax.devices()); print('flax', flax.__version__, 'optax', optax.__version__, 'transformers', transformers.__version__, 'torch', torch.__version__, torch.cuda.is_available())"; } 2>&1 | tee $OUT/env.txt
$PY .devkit/restore.py  # benchmarks/gpu/restore_fp16.py && $PY .devkit/make_bert_base.py /tmp/bert-base-random > /dev/null 2>&1
export PYTHONPATH=$PWD:$PWD/.devkit/site
step "bilrp bert-base 128+128 (highest precision)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 150 $PY benchmarks/bilrp.py --data $D --model-dir /tmp/bert-base-random --torch-device cuda --lengths 128+128 --engines torch_loop,torch_vjp,torch_jvp,jaxsim_forward,jaxsim_auto --repeats 3 --no-memory --loop-max-seconds 20 --vjp-max-seconds 20 --out $OUT/bilrp_gpu_bertbase.md 2>&1 | grep -v "Loading weights" | tail -25
step "bilrp minilm (highest precision)"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 170 $PY benchmarks/bilrp.py --data $D --torch-device cuda --lengths 12+16,64+64,128+128,256+256 --engines torch_loop,torch_vjp,torch_jvp,jaxsim_reverse,jaxsim_forward,jaxsim_auto --repeats 3 --no-memory --loop-max-seconds 15 --vjp-max-seconds 15 --out $OUT/bilrp_gpu_minilm.md 2>&1 | grep -v "Loading weights" | tail -12
step "embed gpu default precision"
timeout 60 $PY benchmarks/embed.py --data $D --torch-device cuda --repeats 5 --out $OUT/embed_gpu_default.md 2>&1 | tail -5
step "embed gpu highest precision"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 60 $PY benchmarks/embed.py --data $D --torch-device cuda --repeats 5 --out $OUT/embed_gpu_highest.md 2>&1 | tail -5
step "tests on gpu (default precision)"
timeout 80 $PY -m pytest -q -p no:cacheprovider tests/test_parity.py tests/test_padding.py 2>&1 | tail -15 | tee $OUT/tests_gpu.txt
step "embed cpu (16 cores)"
JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES= timeout 120 $PY benchmarks/embed.py --data $D --repeats 3 --out $OUT/embed_cpu16.md 2>&1 | tail -5
step done

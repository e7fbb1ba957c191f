"""gan_jax: a pure-JAX GAN trainer, starting as a faithful port of a Keras Fashion-MNIST GAN.

Where things are (each file owns one thing; imports go down this list, never up:
`python ../shared/tools/import_graph.py gan_jax`):
  train.py           `python -m gan_jax.train`: the command line
  study.py           `python -m gan_jax.study`: configs x seeds at one budget, scored, ranked (--shard: many machines)
  sample.py          `python -m gan_jax.sample`: grids, arrays, interpolations from a run
  evaluate.py        `python -m gan_jax.evaluate`: FID, KID, precision/recall, classifier score of a run
  population.py      K runs in one program: their folders and checks, then the one loop
  loop.py            train_and_evaluate(config, workdir) / train_runs: the one training loop
  outputs.py         what a run writes as it trains: record, metrics, TensorBoard, grids, curves, console lines
  chunk.py           K iterations per host call on the device (one fused lax.fori_loop, or K dispatched calls)
  checkpoints.py     orbax checkpoints: save, restore, fall back to a good one, load a run
  run.py             the run folder: refuse/overwrite, its stored config, resume checks, clean stops on signals
  multihost.py       several processes: jax.distributed, who writes, barriers, a lost peer
  sampling.py        images from a train state (grids, evaluation, gan_jax.sample)
  build.py           from a config to the networks, the initial state and the step's Parts
  step.py            the train state and the pure train step, from named pieces (d_terms, d_update, g_update, ...);
                     it reads no config
  schedules.py       hyperparameters that move over a run (start -> end, cosine / linear), read by the step at its iteration
  stats.py           a study's statistics: permutation p-values, rank correlation
  metrics/           the shipped Fashion-MNIST classifier (and its training command), the score maths, the reference
  flags.py           the command line of a config: a --flag per field, --preset, --config, --print-config
  presets.py         the named configs: each the default with only what its source changes
  config.py          every tunable, declared once (flag, help, kind, check): the schema, its JSON form
  checks.py          the checks of a config's values (ranges, int32/float32 limits, contradictions)
  models/            the networks (Flax linen), one file per architecture; ARCHITECTURES
  losses.py          the losses (a Loss entry: D's and G's function), accuracy; LOSSES
  penalties.py       the penalties on D (a Penalty entry each); PENALTIES
  augment.py         DiffAugment's differentiable augmentations; AUGMENTS
  input_pipeline.py  any tfds image dataset (the only TensorFlow import)
  plotting.py        image grids and curves (matplotlib)
  native_output.py   silencing what C/C++ libraries print (TensorFlow's banner, Gloo)
  files.py           writing a file whole (beside it, then renamed)
  errors.py          UserError / RunFailed: one-line messages, exit codes 2 / 1
  compile_cache.py   JAX's persistent compilation cache, turned on by the command lines (a folder per CPU)
"""

__version__ = "0.1.0"

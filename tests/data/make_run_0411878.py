"""The run folder tests/data/run_0411878 (see tests/data/README.md): python make_run_0411878.py OUT, from 0411878."""
import dataclasses, sys
from gan_jax.config import Config
from gan_jax.input_pipeline import synthetic_dataset
from gan_jax.loop import train_and_evaluate
config = dataclasses.replace(Config(), iterations=8, batch_size=8, latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16),
                             sample_every=4, log_every=2, checkpoint_every=4, eval_every=4, eval_samples=32,
                             progress=False)
train_and_evaluate(config, sys.argv[1], dataset=synthetic_dataset(64, seed=1))

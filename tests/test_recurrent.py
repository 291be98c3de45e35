"""Recurrent policies (--rnn gru/lstm): a memory task a GRU solves and a feed-forward policy
cannot, the carry reset at episode starts, truncations bootstrapped from the cut episode's
carry, epochs re-running the rollout's sequences, config errors, checkpoints old and new."""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import serialization, struct
from gymnax.environments import environment, spaces
from test_parallel import _run_child as run_child

from ppo_trainer.app import runner
from ppo_trainer.app.checkpoint import load_checkpoint, save_checkpoint
from ppo_trainer.app.compare import cli as compare_cli
from ppo_trainer.app.eval_cli import main as eval_main
from ppo_trainer.app.evaluate import Evaluator
from ppo_trainer.app.runner import TrainingInterrupted
from ppo_trainer.app.sinks import TIMING_KEYS, read_metrics
from ppo_trainer.app.suite import cli as suite_cli
from ppo_trainer.app.train_cli import main as train_main
from ppo_trainer.app.train_cli import parse_args
from ppo_trainer.config import TrainConfig
from ppo_trainer.errors import ConfigError
from ppo_trainer.networks import (
    CNNActorCritic,
    MLPActorCritic,
    TransformerActorCritic,
    initial_carry,
)
from ppo_trainer.optim import make_optimizer
from ppo_trainer.ppo import Trainer

# --------------------------------------------------------------------------- the memory task


@struct.dataclass
class CueState(environment.EnvState):
    cue: jax.Array  # 0 or 1: the action the query asks for
    time: jax.Array


class CueEnv(environment.Environment):
    """Remember a cue: the first observation shows it (+1 or -1), the next ones show nothing,
    the one ``delay`` steps later asks for it (a query flag). Answering with the cue's action
    gives +1, the other action -1, and the episode ends; every other step gives 0.

    A feed-forward policy sees the same query observation whatever the cue, so its expected
    return is exactly 0 (a coin flip); a policy that remembers the cue gets 1."""

    def __init__(self, delay: int = 2):
        super().__init__()
        self.delay = delay

    @property
    def default_params(self) -> environment.EnvParams:
        return environment.EnvParams(max_steps_in_episode=100)

    def step_env(self, key, state, action, params):
        query = state.time == self.delay
        reward = jnp.where(query, jnp.where(action == state.cue, 1.0, -1.0), 0.0)
        state = CueState(cue=state.cue, time=state.time + 1)
        return self._obs(state), state, reward.astype(jnp.float32), query, {}

    def reset_env(self, key, params):
        state = CueState(cue=jax.random.bernoulli(key).astype(jnp.int32), time=jnp.int32(0))
        return self._obs(state), state

    def _obs(self, state: CueState) -> jax.Array:
        cue = jnp.where(state.time == 0, 2.0 * state.cue - 1.0, 0.0)
        return jnp.stack([cue, (state.time == self.delay).astype(jnp.float32)])

    def observation_space(self, params):
        return spaces.Box(-1.0, 1.0, (2,), jnp.float32)

    def action_space(self, params):
        return spaces.Discrete(2)


def cue_config(**changes) -> TrainConfig:
    base = dict(env="CartPole-v1", network="mlp", hidden_size=16, num_hidden_layers=1,
                num_envs=16, num_steps=12, total_timesteps=6144, update_epochs=4,
                num_minibatches=2, lr=3e-3, gamma=0.9, rnn_size=16, num_seeds=3)
    return TrainConfig(**{**base, **changes})


def trainer_for(cfg: TrainConfig, env=None, env_params=None) -> Trainer:
    env = env or CueEnv()
    env_params = env_params or env.default_params
    tx, schedule = make_optimizer(cfg)
    return Trainer(cfg, env, env_params, tx, lr_schedule=schedule)


@pytest.mark.parametrize("optimizer", ["adam", "muon"])
def test_a_gru_remembers_the_cue_a_feed_forward_policy_cannot(optimizer: str) -> None:
    """32 updates (6k steps) x 3 seeds, greedy evaluation over 512 episodes per seed: the GRU
    answers every query (measured: return 1.00 on seeds 0-7 with either optimizer, learned by
    update ~13); the MLP's greedy answer is one fixed action, right for half the cues."""
    returns = {}
    for rnn in ("gru", "none"):
        cfg = cue_config(optimizer=optimizer, rnn=rnn)
        trainer = trainer_for(cfg)
        keys = jax.random.split(jax.random.PRNGKey(0), cfg.num_seeds)
        state, _ = jax.jit(jax.vmap(lambda k, t=trainer, c=cfg: t.run(t.init(k), c.num_updates)))(
            keys)
        summary = Evaluator(trainer, trainer.env_params, 512)(state.params, state.norm,
                                                              jax.random.PRNGKey(1))
        returns[rnn] = np.asarray(summary["per_seed_mean_return"])
    assert (returns["gru"] >= 0.95).all(), returns
    assert (np.abs(returns["none"]) <= 0.25).all(), returns


# --------------------------------------------------------------------------- the cells' scan


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
@pytest.mark.parametrize("kind", ["mlp", "mlp_shared", "cnn", "transformer"])
def test_the_scan_resets_the_carry_where_an_episode_starts(kind: str, rnn: str) -> None:
    """Env 0 starts an episode at step 3: from there its outputs are those of a fresh sequence
    from the initial carry; env 1 (no reset) carries its memory on, so its outputs differ."""
    common = dict(num_actions=3, action_dim=0, rnn=rnn, rnn_size=8)
    net, obs_shape = {
        "mlp": (MLPActorCritic(obs_shape=(4,), hidden_size=8, **common), (4,)),
        "mlp_shared": (MLPActorCritic(obs_shape=(4,), hidden_size=8, shared_torso=True,
                                      **common), (4,)),
        "cnn": (CNNActorCritic(obs_shape=(3, 3, 2), hidden_size=8, channels=(2, 2), **common),
                (3, 3, 2)),
        "transformer": (TransformerActorCritic(obs_shape=(3, 3, 2), d_model=8, num_layers=1,
                                               num_heads=2, **common), (3, 3, 2)),
    }[kind]
    time, batch = 6, 2
    obs = jax.random.normal(jax.random.PRNGKey(0), (time, batch, *obs_shape))
    params = net.init(jax.random.PRNGKey(1), obs, carry=initial_carry(net, batch))
    assert set(params["params"]) >= set(net.rnn_names)
    assert len(net.rnn_names) == (1 if kind in ("mlp_shared", "transformer") else 2)
    # a carry that is not the initial one: the memory of an earlier episode
    warm, _, _ = net.apply(params, obs, carry=initial_carry(net, batch))
    resets = jnp.zeros((time, batch), bool).at[3, 0].set(True)
    carry, pi, value = net.apply(params, obs, carry=warm, resets=resets)
    _, pi_fresh, value_fresh = net.apply(params, obs[3:], carry=initial_carry(net, batch))
    np.testing.assert_allclose(value[3:, 0], value_fresh[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pi.logits[3:, 0], pi_fresh.logits[:, 0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(value[3:, 1], value_fresh[:, 1], atol=1e-6)
    # one step at a time (the rollout's way) gives the sequence's outputs
    h = warm
    for t in range(time):
        h = jax.tree.map(lambda x, t=t: jnp.where(resets[t][:, None], 0.0, x), h)
        h, _, v = net.apply(params, obs[t], carry=h)
        np.testing.assert_allclose(v, value[t], rtol=1e-5, atol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), h, carry)


# --------------------------------------------------------------------------- the PPO side


@pytest.fixture(scope="module")
def truncated_rollout():
    """Six steps of 4 envs on the cue task cut by a time limit of 2 steps (delay 3: every
    episode is truncated, never terminated), from a carry with memory in it."""
    cfg = cue_config(rnn="gru", num_envs=4, num_steps=6, total_timesteps=24, num_seeds=1,
                     optimizer="adam")
    env = CueEnv(delay=3)
    trainer = trainer_for(cfg, env, env.default_params.replace(max_steps_in_episode=2))
    rs = trainer.init(jax.random.PRNGKey(0))
    rs = rs._replace(carry=jax.tree.map(lambda h: h + 0.5, rs.carry))
    start = (rs.env_state, rs.last_obs, rs.norm, rs.rng, rs.carry)
    end, traj = jax.jit(lambda c: jax.lax.scan(lambda c, _: trainer._env_step(rs.params, c), c,
                                               None, length=6))(start)
    return trainer, rs, end, traj


def test_rollout_resets_the_carry_and_bootstraps_from_the_cut_episode(truncated_rollout) -> None:
    trainer, rs, end, traj = truncated_rollout
    done = np.asarray(traj.terminated | traj.truncated)
    assert np.asarray(traj.truncated).any() and not np.asarray(traj.terminated).any()
    h = rs.carry
    cut_values, reset_values = [], []
    for t in range(6):
        h_next, _, value = trainer.act(rs.params, h, traj.obs[t])
        np.testing.assert_allclose(value, traj.value[t], rtol=1e-5, atol=1e-6)
        final = trainer.act(rs.params, h_next, traj.final_obs[t])[2]
        np.testing.assert_allclose(final, traj.final_value[t], rtol=1e-5, atol=1e-6)
        fresh = trainer.act(rs.params, trainer.initial_carry(4), traj.final_obs[t])[2]
        cut_values += list(np.asarray(final)[done[t]])
        reset_values += list(np.asarray(fresh)[done[t]])
        h = jax.tree.map(lambda x, d=done[t]: jnp.where(d[:, None], 0.0, x), h_next)
    assert not np.allclose(cut_values, reset_values, atol=1e-6)  # the test can tell them apart
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), h, end[4])
    assert np.all(np.asarray(end[4]["actor_rnn"])[done[-1]] == 0)


def test_epochs_rerun_whole_env_sequences_from_the_rollout_carry(truncated_rollout) -> None:
    trainer, rs, _, traj = truncated_rollout
    adv = jnp.zeros_like(traj.value)
    batch = trainer._batch(traj, adv, adv, rs.carry)
    assert batch.obs.shape[:2] == (6, 4) and batch.start.shape == (6, 4)
    np.testing.assert_array_equal(batch.start[1:], traj.truncated[:-1])
    pi, value = trainer._forward(rs.params, batch)
    np.testing.assert_allclose(value, traj.value, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pi.log_prob(traj.action), traj.log_prob, rtol=1e-5, atol=1e-6)
    mbs = trainer._minibatches(batch, jax.random.PRNGKey(0))
    assert mbs.obs.shape == (2, 6, 2, 2) and mbs.start.shape == (2, 6, 2)
    assert mbs.carry["actor_rnn"].shape == (2, 2, 16)
    perm = np.asarray(jax.random.permutation(jax.random.PRNGKey(0), 4)).reshape(2, 2)
    for m in range(2):  # each minibatch: whole sequences of two envs, with their own carry
        np.testing.assert_array_equal(mbs.obs[m], batch.obs[:, perm[m]])
        _, v = trainer._forward(rs.params, jax.tree.map(lambda x, m=m: x[m], mbs))
        np.testing.assert_allclose(v, traj.value[:, perm[m]], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- config, checkpoints


@pytest.mark.parametrize("changes, message", [
    (dict(num_envs=6, num_minibatches=4, num_steps=8), "--num-minibatches 4 must divide --num-envs 6"),
    (dict(augment_symmetry=True), "--augment-symmetry"),
    (dict(rnn_size=0), "--rnn-size must be positive"),
    (dict(rnn="rnn"), "--rnn must be one of none, gru, lstm"),
])
def test_invalid_recurrent_settings_are_one_line_errors(changes, message) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        cue_config(**{"rnn": "gru", **changes}).validate()
    assert "\n" not in str(info.value)
    cue_config(rnn="none", num_envs=6, num_minibatches=4, num_steps=8).validate()  # FF: fine


def test_cli_refuses_indivisible_minibatches_with_exit_2(tmp_path, capsys) -> None:
    code = train_main(["--env", "CartPole-v1", "--rnn", "gru", "--num-envs", "6",
                       "--num-minibatches", "4", "--num-steps", "8", "--run-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "whole env sequences" in err


def test_checkpoints_old_feed_forward_and_recurrent_round_trip(tmp_path) -> None:
    """A feed-forward checkpoint written before RunnerState had a ``carry`` still loads (its
    carry is ``{}``); a recurrent state round-trips with its carry."""
    for rnn in ("none", "gru"):
        cfg = cue_config(rnn=rnn, num_seeds=1, optimizer="adam")
        trainer = trainer_for(cfg)
        state = jax.vmap(trainer.init)(jax.random.split(jax.random.PRNGKey(0), 2))
        template = jax.eval_shape(jax.vmap(trainer.init), jax.random.split(jax.random.PRNGKey(0), 2))
        path = save_checkpoint(tmp_path / f"{rnn}.msgpack", state, 3, {})
        restored = load_checkpoint(path, template).runner_state
        jax.tree.map(np.testing.assert_array_equal, restored, state)
        assert jax.tree.structure(restored) == jax.tree.structure(state)
    assert state.carry["actor_rnn"].shape == (2, 16, 16)
    # the pre-change layout: the same fields without "carry"
    ff = trainer_for(cue_config(num_seeds=1, optimizer="adam"))
    state = jax.vmap(ff.init)(jax.random.split(jax.random.PRNGKey(0), 2))
    old = serialization.to_state_dict(jax.device_get(state))
    del old["carry"]
    payload = {"runner_state": old, "update": 3, "meta": "{}"}
    (tmp_path / "old.msgpack").write_bytes(serialization.msgpack_serialize(payload))
    restored = load_checkpoint(tmp_path / "old.msgpack", jax.eval_shape(lambda: state))
    assert restored.runner_state.carry == {} and restored.update == 3
    jax.tree.map(np.testing.assert_array_equal, restored.runner_state, state)


# --------------------------------------------------------------------------- the command line

CLI_BASE = ["--env", "CartPole-v1", "--optimizer", "muon", "--rnn", "gru", "--rnn-size", "8",
            "--num-envs", "4", "--num-steps", "16", "--total-timesteps", "256",
            "--num-minibatches", "2", "--update-epochs", "2", "--hidden-size", "16",
            "--num-hidden-layers", "1", "--save-freq", "2", "--eval-episodes", "4",
            "--num-seeds", "2"]


def test_resume_is_bit_identical_and_ppo_eval_reproduces_the_final_evaluation(tmp_path,
                                                                              capsys) -> None:
    base = [*CLI_BASE, "--run-dir", str(tmp_path)]
    assert train_main([*base, "--run-name", "straight"]) == 0
    config = parse_args([*base, "--run-name", "resumed"]).config
    with pytest.raises(TrainingInterrupted):
        runner.train(config, should_stop=lambda update: update >= 2)
    assert train_main(["--resume", str(tmp_path / "resumed")]) == 0
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"

    def untimed(run):
        return [{k: v for k, v in r.items() if k not in TIMING_KEYS}
                for r in read_metrics(run / "metrics.jsonl")]

    def ckpt(run):
        return serialization.msgpack_restore((run / "checkpoint.msgpack").read_bytes())

    assert untimed(resumed) == untimed(straight)
    for a, b in zip(jax.tree.leaves(ckpt(resumed)["runner_state"]),
                    jax.tree.leaves(ckpt(straight)["runner_state"]), strict=True):
        np.testing.assert_array_equal(a, b)
    carry = ckpt(straight)["runner_state"]["carry"]
    assert set(carry) == {"actor_rnn", "critic_rnn"} and carry["actor_rnn"].shape == (2, 4, 8)
    assert np.abs(carry["actor_rnn"]).max() > 0  # a memory, saved with the run
    # ppo-eval of the recurrent checkpoint plays the run's own final evaluation again
    out = tmp_path / "eval_cli.json"
    assert eval_main([str(straight), "--gif", "none", "--json", str(out)]) == 0
    again, final = json.loads(out.read_text()), json.loads((straight / "eval.json").read_text())
    assert again["episodes"] == final["episodes"] and again["mean_return"] == final["mean_return"]
    assert "greedy eval over 4 episodes" in capsys.readouterr().out


# --------------------------------------------------------------------------- several devices

DEVICES_CHILD = textwrap.dedent(
    """
    import json
    import jax, numpy as np
    from ppo_trainer import parallel
    from ppo_trainer.config import TrainConfig
    from ppo_trainer.envs import make_env
    from ppo_trainer.optim import make_optimizer
    from ppo_trainer.ppo import Trainer

    cfg = TrainConfig(env="CartPole-v1", network="mlp", hidden_size=16, num_hidden_layers=1,
                      num_envs=8, num_steps=8, total_timesteps=192, update_epochs=1,
                      num_minibatches=2, optimizer="muon", rnn="gru", rnn_size=8,
                      normalize_obs=True)
    env, env_params = make_env(cfg)
    tx, lr_schedule = make_optimizer(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    runs, out = {}, {}
    for n in (1, 4):
        mesh = parallel.make_mesh(jax.devices()[:n]) if n > 1 else None
        trainer = Trainer(cfg, env, env_params, tx, lr_schedule=lr_schedule, mesh=mesh)
        state, run = parallel.jit_trainer(trainer, keys, 3, mesh)
        runs[n] = jax.block_until_ready(run(state))
        out[f"carry_devices_{n}"] = sorted({len(x.sharding.device_set)
                                            for x in jax.tree.leaves(runs[n][0].carry)})
    (s1, m1), (s4, m4) = runs[1], runs[4]
    out["metric_diff"] = {k: float(np.nanmax(np.abs(np.asarray(m1[k], np.float64)
                                                    - np.asarray(m4[k], np.float64)))) for k in m1}
    out["param_diff"] = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                            for a, b in zip(jax.tree.leaves((s1.params, s1.carry)),
                                            jax.tree.leaves((s4.params, s4.carry))))
    print("RESULT " + json.dumps(out))
    """
)


def test_four_devices_give_the_one_device_result() -> None:
    """The carry is sharded with the envs (each device holds its envs' memories) and the
    sequence minibatches split over the devices: the learning curve is one device's."""
    out, _ = run_child(DEVICES_CHILD)
    assert out["carry_devices_4"] == [4] and out["carry_devices_1"] == [1]
    for name, diff in out["metric_diff"].items():
        assert diff <= 1e-4, (name, diff)
    assert out["metric_diff"]["charts/episodic_return"] == 0.0
    assert out["param_diff"] <= 1e-4


def test_compare_and_suite_accept_the_flags() -> None:
    req = compare_cli.parse_args(["--env", "MemoryChain-bsuite", "--optimizers", "adam", "muon",
                                  "--rnn", "lstm", "--rnn-size", "32", "--out", "x"])
    assert {(c.rnn, c.rnn_size) for c in req.configs.values()} == {("lstm", 32)}
    suite = {"MemoryChain-bsuite": {"overrides": {"lr": 1e-3}}}
    args = suite_cli.build_parser().parse_args(["--rnn", "gru", "--rnn-size", "32"])
    assert suite_cli.env_overrides(suite, "MemoryChain-bsuite", args) == {
        "lr": 1e-3, "rnn": "gru", "rnn_size": 32}
    args = suite_cli.build_parser().parse_args([])
    assert suite_cli.env_overrides(suite, "MemoryChain-bsuite", args) == {"lr": 1e-3}

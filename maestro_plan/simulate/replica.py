"""One vLLM engine under continuous batching, simulated step by step (not token by token).

What an iteration does (vLLM V1 scheduler, vllm/v1/core/sched/scheduler.py):
- Running sequences each decode one token per step; waiting calls are admitted in queue order
  while fewer than --max-num-seqs run and the KV pool holds the new call's prompt (the head of the
  queue blocks the rest when it does not fit, as vLLM `break`s there). Prompts are prefilled in
  chunks inside the same steps (chunked prefill), at most --max-num-batched-tokens tokens per step
  including one per decoding sequence.
- KV grows one token per decoding sequence per step. When the pool cannot hold the next step,
  vLLM preempts by recompute: the newest running request (FCFS policy, `self.running.pop()`), or the
  lowest-priority one (priority policy, `max(self.running, key=(priority, arrival_time))`), frees
  its blocks and goes back to the waiting queue; it is prefilled again (prompt + tokens generated so
  far) when readmitted. EDF and Maestro queues use the priority policy's victim, FIFO the FCFS one.

Step times come from the estimator (maestro_plan.estimate.decode_step_ms / prefill_ms at the
replica's TP and compute share), tabulated once per configuration:
- decode step of B sequences holding S tokens in total = step(B, 0) + B * kv(S / B), where
  kv(c) = step(1, c) - step(1, 0) is the attention read of one sequence (exact for the estimator's
  roofline, whose KV term is additive over sequences);
- a step that also prefills chunks adds, per chunk of c tokens after p already computed,
  prefill(p + c) - prefill(p) (the marginal work: the weights are read once per step);
- a prefill-only step costs prefill(1) + those marginals.

Speed: between events that change the batch (a sequence finishing, the KV pool filling, a new
call that can be admitted) the batch is constant, so k decode steps are one event whose length is
k x the step time at the mean context over those steps. An arrival that can be admitted cuts such a
macro-step at the step in flight.

Simplifications (stated, not hidden): KV is counted in tokens, with one spare block per admitted
prompt instead of per-sequence block rounding; prefix caching is not modelled (shared prefixes
are prefilled in full, which is conservative); a pipeline-parallel replica (worker_nodes) steps
at the speed the estimator gives for the whole model at its TP.
"""

from __future__ import annotations

import heapq
import math

from maestro_plan.estimate import VLLM, decode_step_ms, prefill_ms
from maestro_plan.load.schema import GpuType, ModelSpec
from maestro_plan.simulate.calls import Call
from maestro_plan.simulate.events import Event, Host
from maestro_plan.simulate.fleet import EngineConfig

BLOCK = VLLM.block_size
ITER, LOADED, IDLE = Event.ITER, Event.LOADED, Event.IDLE  # the event kinds engines schedule

WAITING, PREFILL, DECODE, DONE, DROPPED = 0, 1, 2, 3, 4
COLD, LOADING, WARM = 0, 1, 2


class Perf:
    """Tabulated step times of one (model, GPU, TP, compute share) from the estimator."""

    GRID_POINTS = 256

    def __init__(self, model: ModelSpec, gpu: GpuType, tp: int, share: float, max_len: int) -> None:
        self.model, self.gpu, self.tp, self.share = model, gpu, tp, share
        step = max(16, int(math.ceil(max_len / self.GRID_POINTS / 16.0)) * 16)
        self.g = float(step)
        xs = [1] + [i * step for i in range(1, self.GRID_POINTS + 2)]
        self.pre_tab = [prefill_ms(model, gpu, tp, x, compute_share=share) for x in xs]
        d0 = decode_step_ms(model, gpu, tp, 1, 0, compute_share=share)
        self.kv_tab = [decode_step_ms(model, gpu, tp, 1, 0 if i == 0 else i * step, compute_share=share) - d0 for i in range(len(xs))]
        self.pre0 = self.pre_tab[0]
        self._base: dict[int, float] = {1: d0}

    def _interp(self, tab: list[float], x: float) -> float:
        i = x / self.g
        lo = int(i)
        n = len(tab) - 1
        if lo >= n:  # extrapolate along the last segment
            return tab[n] + (tab[n] - tab[n - 1]) * (i - n)
        return tab[lo] + (tab[lo + 1] - tab[lo]) * (i - lo)

    def prefill(self, tokens: float) -> float:
        if tokens <= self.g:
            # below the first grid step: between prefill(1) and prefill(g)
            return self.pre_tab[0] + (self.pre_tab[1] - self.pre_tab[0]) * max(tokens - 1.0, 0.0) / (self.g - 1.0)
        return self._interp(self.pre_tab, tokens)

    def chunk(self, done: float, c: float) -> float:
        """Marginal time of prefilling c more prompt tokens after `done` were computed."""
        return self.prefill(done + c) - self.prefill(max(done, 1.0))

    def base(self, b: int) -> float:
        v = self._base.get(b)
        if v is None:
            v = decode_step_ms(self.model, self.gpu, self.tp, b, 0, compute_share=self.share)
            self._base[b] = v
        return v

    def decode(self, b: int, total_ctx: float) -> float:
        return self.base(b) + b * self._interp(self.kv_tab, total_ctx / b)

    def call_ms(self, prompt: float, out: float) -> float:
        """One call alone on the engine: prefill + out x batch-1 decode steps (Maestro's predictor)."""
        return self.prefill(prompt) + max(out - 1.0, 0.0) * self.decode(1, prompt + out / 2.0)


class Engine:
    """The simulated state of one engine."""

    def __init__(self, idx: int, cfg: EngineConfig, perf: Perf, sim: Host, *, priority_victims: bool) -> None:
        self.idx = idx
        self.cfg = cfg
        self.perf = perf
        self.sim = sim
        self.kv_cap = cfg.kv_tokens
        self.max_seqs = cfg.max_num_seqs
        self.max_len = cfg.max_model_len
        self.budget = cfg.max_num_batched_tokens
        self.priority_victims = priority_victims
        self.state = COLD if cfg.standby else WARM
        self.waiting: list[tuple[float, int, Call]] = []
        self.running: dict[int, Call] = {}
        self.prefilling: list[Call] = []
        self.dec: list[tuple[int, int, Call, int]] = []
        self.B = 0
        self.S = 0.0
        self.step = 0
        self.kv_used = 0.0
        self.busy = False
        self.epoch = 0
        self.idle_epoch = 0
        # the iteration in flight
        self.it_start = 0.0
        self.it_step = 0.0
        self.it_k = 0
        self.it_B = 0
        self.it_pure = False
        self.it_chunks: list[tuple[Call, int]] = []
        self.it_nrun = 0
        self.it_kv = 0.0
        # statistics (over the measurement window)
        self.busy_ms = 0.0
        self.batch_area = 0.0
        self.kv_area = 0.0
        self.kv_peak = 0.0
        self.served = 0
        self.served_window = 0
        self.preemptions = 0
        self.truncated = 0
        self.cold_starts = 0
        self.wait_sum = 0.0
        self.lat_sum = 0.0
        self.tokens_out = 0
        self.steps = 0

    # ---------------------------------------------------------------- arrivals
    def enqueue(self, call: Call, now: float) -> None:
        call.state = WAITING
        heapq.heappush(self.waiting, (call.key, call.id, call))
        if self.state != WARM:
            if self.state == COLD:
                self.state = LOADING
                self.cold_starts += 1
                self.sim.push(now + self.cfg.cold_start_ms, LOADED, self, 0)
            return
        if not self.busy:
            self._schedule(now)
        elif self.it_pure and self.it_k > 1 and len(self.running) < self.max_seqs:
            n = int((now - self.it_start) / self.it_step) + 1
            if n < self.it_k and self.kv_used + self.it_B * n + call.prompt_eff + BLOCK <= self.kv_cap:
                self.it_k = n
                self.epoch += 1
                self.sim.push(self.it_start + n * self.it_step, ITER, self, self.epoch)

    def loaded(self, now: float) -> None:
        self.state = WARM
        if not self.busy:
            self._schedule(now)

    def idle_check(self, now: float, epoch: int) -> None:
        if epoch == self.idle_epoch and self.state == WARM and not self.busy and not self.waiting and not self.running:
            self.state = COLD

    # ---------------------------------------------------------------- iterations
    def iter_end(self, now: float) -> None:
        sim = self.sim
        k = self.it_k
        lo = self.it_start if self.it_start > sim.w0 else sim.w0
        hi = now if now < sim.w1 else sim.w1
        if hi > lo:
            ov = hi - lo
            self.busy_ms += ov
            self.batch_area += self.it_nrun * ov
            kvm = self.it_kv + self.it_B * k / 2.0
            self.kv_area += kvm * ov
        kv_end = self.it_kv + self.it_B * k
        if kv_end > self.kv_peak:
            self.kv_peak = kv_end
        self.steps += max(k, 1)
        B = self.it_B
        if B:
            self.step += k
            self.S += B * k
            self.kv_used += B * k
            self.tokens_out += B * k
            dec = self.dec
            step = self.step
            while dec and dec[0][0] <= step:
                _, _, c, inc = heapq.heappop(dec)
                if inc != c.inc or c.state != DECODE:
                    continue
                ctx = c.c0 + (step - c.join)
                self.B -= 1
                self.S -= ctx
                self.kv_used -= ctx
                self._finish(c, now)
        for c, n in self.it_chunks:
            if c.state != PREFILL:
                continue
            c.prefilled += n
            if c.prefilled >= c.prompt_eff:
                self.prefilling.remove(c)
                if c.t_first < 0:
                    c.t_first = now
                self.tokens_out += 1
                if c.out_rem <= 1:
                    self.kv_used -= c.prompt_eff
                    self._finish(c, now)
                else:
                    c.state = DECODE
                    c.join = self.step
                    c.c0 = c.prompt_eff
                    c.inc += 1
                    self.B += 1
                    self.S += c.prompt_eff
                    heapq.heappush(self.dec, (self.step + c.out_rem - 1, c.id, c, c.inc))
        self.it_chunks = []
        self.busy = False
        self._schedule(now)

    def _finish(self, c: Call, now: float) -> None:
        c.state = DONE
        del self.running[c.id]
        self.served += 1
        if self.sim.w0 <= now < self.sim.w1:
            self.served_window += 1
        self.sim.call_done(c, now)

    def _victim(self) -> Call:
        if self.priority_victims:
            return max(self.running.values(), key=lambda c: (c.key, c.id))
        return next(reversed(self.running.values()))

    def _preempt(self, c: Call) -> None:
        """vLLM recompute preemption: free the KV, back to the waiting queue."""
        if c.state == DECODE:
            gen = self.step - c.join + 1  # first token from the prefill step, one per decode step since
            ctx = c.c0 + (self.step - c.join)
            self.B -= 1
            self.S -= ctx
            self.kv_used -= ctx
            c.prompt_eff = ctx + 1
            c.out_rem -= gen
            c.inc += 1
        else:
            self.kv_used -= c.prompt_eff
            self.prefilling.remove(c)
        c.prefilled = 0
        c.preemptions += 1
        self.preemptions += 1
        del self.running[c.id]
        c.state = WAITING
        heapq.heappush(self.waiting, (c.key, c.id, c))

    def _make_room(self, need: float) -> None:
        """Preempt until the pool holds `need` more tokens (the next step's growth)."""
        while self.kv_cap - self.kv_used < need and self.running:
            if len(self.running) == 1:
                # a lone sequence that outgrew the pool: it stops here (vLLM caps a request at what fits)
                c = next(iter(self.running.values()))
                if c.state == DECODE:
                    ctx = c.c0 + (self.step - c.join)
                    self.B -= 1
                    self.S -= ctx
                    self.kv_used -= ctx
                    c.inc += 1
                    self.truncated += 1
                    self._finish(c, self.sim.now)
                    return
            v = self._victim()
            self._preempt(v)
            need = self.B

    def _schedule(self, now: float) -> None:
        if self.state != WARM:
            return
        running = self.running
        waiting = self.waiting
        # admission in queue order
        while waiting and len(running) < self.max_seqs:
            c = waiting[0][2]
            need = c.prompt_eff + BLOCK
            if need > self.kv_cap:
                need = self.kv_cap
            if self.kv_used + self.B + need > self.kv_cap:  # running sequences are served first
                break
            heapq.heappop(waiting)
            running[c.id] = c
            c.state = PREFILL
            c.prefilled = 0
            self.kv_used += c.prompt_eff
            self.prefilling.append(c)
            if c.t_admit < 0:
                c.t_admit = now
        if self.B and self.kv_cap - self.kv_used < self.B:
            self._make_room(self.B)
        B = self.B
        if self.prefilling:
            budget = self.budget - B
            if budget < BLOCK:
                budget = BLOCK
            t = self.perf.decode(B, self.S) if B else self.perf.pre0
            chunks = []
            for c in self.prefilling:
                n = c.prompt_eff - c.prefilled
                if n > budget:
                    n = budget
                t += self.perf.chunk(c.prefilled, n)
                chunks.append((c, n))
                budget -= n
                if budget <= 0:
                    break
            self.it_chunks = chunks
            self._start(now, t, 1 if B else 0, B, False)
            return
        if B:
            dec = self.dec
            while dec and (dec[0][3] != dec[0][2].inc or dec[0][2].state != DECODE):
                heapq.heappop(dec)
            k = dec[0][0] - self.step
            room = int((self.kv_cap - self.kv_used) // B)
            if room < k:
                k = room
            if k < 1:
                k = 1
            t = self.perf.decode(B, self.S + B * (k - 1) / 2.0)
            self._start(now, t, k, B, True)
            return
        # idle
        if self.cfg.standby:
            self.idle_epoch += 1
            self.sim.push(now + self.sim.standby_idle_ms, IDLE, self, self.idle_epoch)

    def _start(self, now: float, step_ms: float, k: int, B: int, pure: bool) -> None:
        self.busy = True
        self.epoch += 1
        self.it_start = now
        self.it_step = step_ms
        self.it_k = k
        self.it_B = B
        self.it_pure = pure
        self.it_nrun = len(self.running)
        self.it_kv = self.kv_used
        self.sim.push(now + step_ms * max(k, 1), ITER, self, self.epoch)

    def flush(self, end: float) -> None:
        """Count the part of the iteration in flight when the run stops (statistics only)."""
        if not self.busy:
            return
        sim = self.sim
        lo = max(self.it_start, sim.w0)
        hi = min(end, sim.w1, self.it_start + self.it_step * max(self.it_k, 1))
        if hi > lo:
            ov = hi - lo
            self.busy_ms += ov
            self.batch_area += self.it_nrun * ov
            self.kv_area += (self.it_kv + self.it_B * (hi - self.it_start) / self.it_step / 2.0) * ov

    def in_flight(self) -> int:
        return len(self.waiting) + len(self.running)

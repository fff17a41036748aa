"""A PyTorch port of the official fully supervised PSP network, written from the reference;
timed on CPU (run with a torch venv).

    /path/to/torch/venv/bin/python benchmarks/torch_port.py STATE.npz INPUTS.npz OUT.npz

The PyTorch yardstick of `benchmarks/serving_benchmark.py`. This is this project's own code,
not the authors': what their PyTorch network computes at inference (eval mode, no dropout),
written from `shared/docs/reference.md` §2 and §6 with the official `state_dict` names, so an
official `state_dict` (`STATE.npz`, keys as in `PSP_fully.pt`) loads into it unchanged. It has
not been run against the authors' `fully_model.py`: its agreement with ave-tf (the benchmark's
"max abs difference" notes) is between two implementations of the same reference. For every
`audio_<b>` / `visual_<b>` pair in INPUTS.npz it times `repeats` calls (torch.no_grad, default
thread count) and writes `probabilities_<b>` and `seconds_<b>` (every call's latency) to OUT.npz.

Imports only torch and NumPy: this project does not depend on torch.
"""

import sys
import time

import numpy as np
import torch
from torch import nn

TAU = 0.099
EPSILON = 1e-8


class AVGA(nn.Module):
    """Audio-guided visual attention with the official broadcast of the audio term."""

    def __init__(self):
        super().__init__()
        self.affine_video = nn.Linear(512, 512)
        self.affine_audio = nn.Linear(128, 512)
        self.affine_v = nn.Linear(512, 49, bias=False)
        self.affine_g = nn.Linear(512, 49, bias=False)
        self.affine_h = nn.Linear(49, 1, bias=False)

    def forward(self, audio, visual):  # (B, 10, 128), (B, 10, 7, 7, 512) -> (B, 10, 512)
        batch, segments = audio.shape[:2]
        cells = visual.reshape(batch * segments, 49, 512)
        v = torch.relu(self.affine_video(cells))
        g = torch.relu(self.affine_audio(audio.reshape(batch * segments, 128)))
        content = self.affine_v(v) + self.affine_g(g).unsqueeze(2)  # (B*10, 49, 49)
        alpha = torch.softmax(self.affine_h(torch.tanh(content)).squeeze(2), dim=-1)
        return torch.bmm(alpha.unsqueeze(1), cells).reshape(batch, segments, 512)


class LSTM_A_V(nn.Module):  # noqa: N801 (the official module's name)
    def __init__(self):
        super().__init__()
        self.lstm_audio = nn.LSTM(128, 128, batch_first=True, bidirectional=True)
        self.lstm_video = nn.LSTM(128, 128, batch_first=True, bidirectional=True)

    def forward(self, audio, visual):
        return self.lstm_audio(audio)[0], self.lstm_video(visual)[0]


class PSP(nn.Module):
    """Positive sample propagation, fully supervised form (eval mode)."""

    def __init__(self):
        super().__init__()
        for name in ("v_L1", "v_L2", "a_L1", "a_L2", "v_fc", "a_fc"):
            setattr(self, name, nn.Linear(256, 256, bias=False))
        self.layer_norm = nn.LayerNorm(256, eps=1e-6)

    def forward(self, a, v):
        v1, v2 = torch.relu(self.v_L1(v)), torch.relu(self.v_L2(v))
        a1, a2 = torch.relu(self.a_L1(a)), torch.relu(self.a_L2(a))
        beta_va = torch.relu(torch.bmm(v2, a1.transpose(1, 2)) / 16.0)  # sqrt(256)
        gammas = []
        for beta in (beta_va, beta_va.transpose(1, 2)):
            beta = beta / (beta.sum(-1, keepdim=True) + EPSILON)
            gamma = beta * (beta > TAU)
            gammas.append(gamma / (gamma.sum(-1, keepdim=True) + EPSILON))
        v_psp = v + torch.bmm(gammas[0], a2)
        a_psp = a + torch.bmm(gammas[1], v1)
        v_psp = self.layer_norm(torch.relu(self.v_fc(v_psp)))
        a_psp = self.layer_norm(torch.relu(self.a_fc(a_psp)))
        return (v_psp + a_psp) / 2


class FullyPSP(nn.Module):
    """audio (B, 10, 128), visual (B, 10, 7, 7, 512) -> segment probabilities (B, 10, 29)."""

    def __init__(self):
        super().__init__()
        self.fa = nn.Sequential(nn.Linear(128, 256, bias=False), nn.Linear(256, 128, bias=False))
        self.fv = nn.Sequential(nn.Linear(512, 256, bias=False), nn.Linear(256, 128, bias=False))
        self.attention = AVGA()
        self.lstm_a_v = LSTM_A_V()
        self.psp = PSP()
        self.L1 = nn.Linear(256, 64, bias=False)
        self.L2 = nn.Linear(64, 29, bias=False)

    def forward(self, audio, visual):
        audio = self.fa(audio)
        visual = self.fv(self.attention(audio, visual))
        lstm_audio, lstm_visual = self.lstm_a_v(audio, visual)
        fused = self.psp(lstm_audio, lstm_visual)
        return torch.softmax(self.L2(torch.relu(self.L1(fused))), dim=-1)


def main(state_path: str, inputs_path: str, out_path: str, repeats: str = "50") -> None:
    model = FullyPSP().eval()
    wanted = model.state_dict()
    with np.load(state_path) as state:
        model.load_state_dict({key: torch.from_numpy(state[key]) for key in wanted})
    results = {}
    with np.load(inputs_path) as inputs, torch.no_grad():
        for key in sorted(k for k in inputs.files if k.startswith("audio_")):
            batch = key.split("_", 1)[1]
            audio = torch.from_numpy(inputs[key])
            visual = torch.from_numpy(inputs[f"visual_{batch}"])
            results[f"probabilities_{batch}"] = model(audio, visual).numpy()  # also the warm-up
            seconds = []
            for _ in range(int(repeats)):
                start = time.perf_counter()
                model(audio, visual)
                seconds.append(time.perf_counter() - start)
            results[f"seconds_{batch}"] = np.asarray(seconds)
    np.savez(out_path, **results)


if __name__ == "__main__":
    main(*sys.argv[1:])

"""What oneDNN runs during extraction: the verbose-log parser of benchmarks/onednn_kernels.py
and (slow) the extraction's kernels themselves: float32 math unless the environment allows bf16."""

import fractions
import os

import pytest

from ave_tf.testing.clips import ClipSpec, write_clip
from benchmarks import onednn_kernels
from benchmarks.onednn_kernels import Kernel

_LOG = """\
onednn_verbose,v1,info,oneDNN v3.7.3 (commit N/A)
onednn_verbose,v1,info,cpu,runtime:threadpool,nthr:2
onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support
onednn_verbose,v1,primitive,info,template:operation,engine,primitive,implementation,prop_kind,\
memory_descriptors,attributes,auxiliary,problem_desc,exec_time
ave_tf_network: VGGish
onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:cdba::f0 \
dst:f32::blocked:Adcb16a::f0,,,64x1x3x3,0.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,\
src:f32::blocked:acdb::f0 wei:f32:a:blocked:Adcb16a::f0 bia:f32:a:blocked:a::f0 \
dst:f32::blocked:acdb::f0,attr-scratchpad:user attr-post-ops:eltwise_relu,\
alg:convolution_direct,mb10_ic1oc64_ih96oh96kh3sh1dh0ph1_iw64ow64kw3sw1dw0pw1,1.5
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core,forward_training,\
src:f32::blocked:acdb::f0 wei:f32:a:blocked:Adcb16a::f0 bia:f32:a:blocked:a::f0 \
dst:f32::blocked:acdb::f0,attr-scratchpad:user attr-post-ops:eltwise_relu,\
alg:convolution_direct,mb10_ic64oc128_ih48oh48kh3sh1dh0ph1_iw32ow32kw3sw1dw0pw1,2.5
ave_tf_network: VGG19
onednn_verbose,v1,primitive,exec,cpu,convolution,brg_conv_fwd:avx512_core_amx,forward_training,\
src:f32::blocked:acdb::f0 wei:f32:a:blocked:Adcb16a::f0 bia:f32:a:blocked:a::f0 \
dst:f32::blocked:acdb::f0,attr-scratchpad:user attr-fpmath:bf16 attr-post-ops:eltwise_relu,\
alg:convolution_direct,mb20_ic3oc64_ih224oh224kh3sh1dh0ph1_iw224ow224kw3sw1dw0pw1,10
onednn_verbose,v1,primitive,exec,cpu,inner_product,x64:gemm:jit,forward_training,\
src:bf16::blocked:ab::f0 wei:bf16::blocked:ba::f0 bia:f32:a:blocked:a::f0 \
dst:f32::blocked:ab::f0,attr-scratchpad:user,,mb10ic4096oc128,4
"""


def test_verbose_lines_are_counted_by_network_kernel_types_and_math_mode():
    kernels, info = onednn_kernels.count_kernels(_LOG)
    assert info == [
        "oneDNN v3.7.3 (commit N/A)",
        "cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support",
    ]
    f32 = "src f32, wei f32, dst f32"
    strict_conv = Kernel("VGGish", "convolution", "brg_conv_fwd:avx512_core", f32, "strict")
    amx_conv = Kernel("VGG19", "convolution", "brg_conv_fwd:avx512_core_amx", f32, "bf16")
    bf16_dense = Kernel(
        "VGG19", "inner_product", "x64:gemm:jit", "src bf16, wei bf16, dst f32", "strict"
    )
    reorder = Kernel("VGGish", "reorder", "jit:uni", "src f32, dst f32", "strict")
    assert kernels == {
        reorder: [0.5],
        strict_conv: [1.5, 2.5],
        amx_conv: [10.0],
        bf16_dense: [4.0],
    }
    assert onednn_kernels.reduced_precision(kernels) == [amx_conv, bf16_dense]
    assert onednn_kernels.compute_ms(kernels, "VGGish") == 4.0  # the reorder is not compute
    rows = onednn_kernels.kernel_table({"as set": kernels})
    assert rows[2] == (
        "| as set | VGG19 | convolution | `brg_conv_fwd:avx512_core_amx` | "
        "src f32, wei f32, dst f32 | bf16 | 1 | 10.0 |"
    )


@pytest.mark.slow  # two TensorFlow start-ups and 10 VGG19 frames each: ~1 min on 2 busy cores
def test_extraction_computes_in_float32_unless_the_environment_allows_bf16(tmp_path):
    path = write_clip(tmp_path / "clip.mp4", ClipSpec(seconds=10, fps=fractions.Fraction(1)))
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in onednn_kernels.FPMATH_VARIABLES
    }
    default, _ = onednn_kernels.count_kernels(onednn_kernels.run_child(str(path), environment))
    for network in ("VGGish", "VGG19"):
        assert any(k.network == network and k.kind == "convolution" for k in default), network
    assert onednn_kernels.reduced_precision(default) == []
    environment["ONEDNN_DEFAULT_FPMATH_MODE"] = "BF16"
    allowed, _ = onednn_kernels.count_kernels(onednn_kernels.run_child(str(path), environment))
    convolutions = [k for k in allowed if k.kind == "convolution"]
    assert convolutions and all(
        k in onednn_kernels.reduced_precision(allowed) for k in convolutions
    )

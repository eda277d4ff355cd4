"""LRP rules against their closed forms (einsum), conservation, and the model's LRP path."""

from __future__ import annotations

import pytest
import torch

import istvt_explain as ie
from istvt_explain.attribution import explain, lrp_mode
from istvt_explain.attribution._reference import two_pass_lrp_row
from istvt_explain.attribution.lrp import LRPAttribution
from istvt_explain.models.layers import self_subtract
from istvt_explain.models.lrp_rules import (
    IdentityRule,
    LinearEpsilon,
    LinearZPlus,
    MatMulHalves,
    ResidualAdd,
    RuleSignal,
    SelfSubtract,
)

CONSERVATION_TOL = 1e-3  # relative error of the relevance reaching the token grid (float32)


def rel_of(fn, *inputs, relevance):
    """Relevance of each input when ``relevance`` is put on ``fn(*inputs)``'s output."""
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    return torch.autograd.grad(out, leaves, grad_outputs=relevance)


def test_linear_zplus_closed_form():
    gen = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(3, 5, generator=gen), torch.randn(4, 5, generator=gen), torch.randn(4, generator=gen)
    r_out = torch.rand(3, 4, generator=gen)
    (r_in,) = rel_of(lambda x: LinearZPlus.apply(x, w, b), x, relevance=r_out)
    # z_ik = sum_j x+_ij W+_kj + x-_ij W-_kj; R_ij = sum_k (x+_ij W+_kj + x-_ij W-_kj) R_ik / z_ik
    contrib = (torch.einsum("ij,kj->ikj", x.clamp(min=0), w.clamp(min=0))
               + torch.einsum("ij,kj->ikj", x.clamp(max=0), w.clamp(max=0)))
    z = contrib.sum(-1)
    expected = torch.einsum("ikj,ik->ij", contrib, r_out / z)
    torch.testing.assert_close(r_in, expected)
    torch.testing.assert_close(r_in.sum(), r_out.sum())
    torch.testing.assert_close(LinearZPlus.apply(x, w, b), x @ w.T + b)


def test_matmul_halves_closed_form_and_conservation():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.rand(2, 3, 4, generator=gen) + 0.1, torch.rand(2, 4, 5, generator=gen) + 0.1
    r_out = torch.rand(2, 3, 5, generator=gen)
    r_a, r_b = rel_of(lambda a, b: MatMulHalves.apply(a, b, 0.5), a, b, relevance=r_out)
    z = 0.5 * torch.einsum("nij,njk->nik", a, b)
    s = r_out / z
    torch.testing.assert_close(r_a, 0.5 * torch.einsum("nij,njk,nik->nij", a, 0.5 * b, s))
    torch.testing.assert_close(r_b, 0.5 * torch.einsum("nij,njk,nik->njk", 0.5 * a, b, s))
    torch.testing.assert_close(r_a.sum(), r_out.sum() / 2)
    torch.testing.assert_close(r_b.sum(), r_out.sum() / 2)


def test_residual_add_rescales_to_conserve_per_sample():
    gen = torch.Generator().manual_seed(2)
    a, b = torch.randn(3, 4, 6, generator=gen), torch.randn(3, 4, 6, generator=gen)
    r_out = torch.randn(3, 4, 6, generator=gen)
    r_a, r_b = rel_of(ResidualAdd.apply, a, b, relevance=r_out)
    za, zb = a * r_out / (a + b), b * r_out / (a + b)
    sa, sb, total = za.sum((1, 2)), zb.sum((1, 2)), r_out.sum((1, 2))
    scale_a = sa.abs() / (sa.abs() + sb.abs()) * total / sa
    scale_b = sb.abs() / (sa.abs() + sb.abs()) * total / sb
    torch.testing.assert_close(r_a, za * scale_a[:, None, None], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(r_b, zb * scale_b[:, None, None], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close((r_a + r_b).sum((1, 2)), total, rtol=1e-4, atol=1e-5)


def test_self_subtract_splits_by_magnitude():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 3, generator=gen)
    r_out = torch.rand(2, 5, 3, generator=gen)
    (r_in,) = rel_of(SelfSubtract.apply, x, relevance=r_out)
    share = x[:, 2:].abs() / (x[:, 2:].abs() + x[:, 1:-1].abs())
    expected = r_out.clone()
    expected[:, 2:] = r_out[:, 2:] * share
    expected[:, 1:-1] += r_out[:, 2:] * (1 - share)
    torch.testing.assert_close(r_in, expected)
    torch.testing.assert_close(r_in.sum(), r_out.sum())
    forward = SelfSubtract.apply(x)
    torch.testing.assert_close(forward[:, 2:], x[:, 2:] - x[:, 1:-1])


def test_identity_rule_passes_relevance_unchanged():
    x, r_out = torch.randn(4, 7), torch.randn(4, 7)
    norm = torch.nn.LayerNorm(7)
    (r_in,) = rel_of(lambda x: IdentityRule.apply(x, norm), x, relevance=r_out)
    torch.testing.assert_close(r_in, r_out)
    torch.testing.assert_close(IdentityRule.apply(x, norm), norm(x))


@pytest.fixture(scope="module")
def tiny() -> ie.ISTVT:
    torch.manual_seed(0)
    return ie.create_model("tiny", image_size=64, frames=3)


def test_lrp_path_forward_equals_normal_forward(tiny):
    clips = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        plain = tiny(clips)
        with lrp_mode(tiny):
            assert all(m.lrp for m in tiny.modules() if hasattr(m, "lrp"))
            lrp = tiny(clips)
    torch.testing.assert_close(lrp, plain, rtol=1e-5, atol=1e-6)
    assert not any(m.lrp for m in tiny.modules() if hasattr(m, "lrp"))


@pytest.mark.parametrize("target", ["fake", "real"])
def test_lrp_conserves_relevance(tiny, target):
    clips = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    exp = explain(tiny, clips, method="lrp", target=target)
    conservation = exp.extras["conservation"]
    torch.testing.assert_close(conservation, torch.ones(2), rtol=0, atol=CONSERVATION_TOL)
    torch.testing.assert_close(exp.extras["token_relevance"].flatten(1).sum(1), conservation)


def test_lrp_conserves_on_the_full_tiny_preset():
    torch.manual_seed(1)
    model = ie.create_model("tiny")
    c = model.config
    clips = torch.rand(1, c.frames, 3, c.image_size, c.image_size) * 2 - 1
    exp = explain(model, clips, method="lrp")
    assert abs(float(exp.extras["conservation"][0]) - 1) < CONSERVATION_TOL


def test_lrp_real_is_not_negated_fake(tiny):
    """The signed head gives the real class its own positive evidence."""
    clips = torch.rand(1, 3, 3, 64, 64) * 2 - 1
    fake = explain(tiny, clips, method="lrp", target="fake").extras["token_relevance"]
    real = explain(tiny, clips, method="lrp", target="real").extras["token_relevance"]
    assert not torch.allclose(fake, -real)


# -- one forward, two backward walks: the gradient mode must be the ordinary gradient ----------------
@pytest.mark.parametrize("rule", ["linear", "matmul", "residual", "self_subtract", "layer_norm", "softmax"])
def test_rules_in_gradient_mode_return_the_ordinary_gradient(rule):
    gen = torch.Generator().manual_seed(3)
    signal = RuleSignal("gradient")
    norm = torch.nn.LayerNorm(5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(5, generator=gen))
        norm.bias.copy_(torch.randn(5, generator=gen))
    w, b = torch.randn(4, 5, generator=gen), torch.randn(4, generator=gen)
    cases = {  # rule (with the signal), the plain operation, input shapes
        "linear": (lambda x: LinearZPlus.apply(x, w, b, signal), lambda x: x @ w.T + b, [(3, 5)]),
        "matmul": (lambda a, c: MatMulHalves.apply(a, c, 0.7, signal), lambda a, c: 0.7 * a @ c, [(2, 3, 4), (2, 4, 5)]),
        "residual": (lambda a, c: ResidualAdd.apply(a, c, signal), lambda a, c: a + c, [(2, 3, 4), (2, 3, 4)]),
        "self_subtract": (lambda x: SelfSubtract.apply(x, signal), self_subtract, [(2, 5, 4)]),
        "layer_norm": (lambda x: IdentityRule.apply(x, norm, signal), norm, [(3, 5)]),
        "softmax": (lambda x: IdentityRule.apply(x, lambda s: s.softmax(-1), signal), lambda s: s.softmax(-1), [(3, 5)]),
    }
    with_rule, plain, shapes = cases[rule]
    inputs = [torch.randn(*shape, generator=gen) for shape in shapes]
    seed = torch.randn(plain(*inputs).shape, generator=gen)
    got = rel_of(with_rule, *inputs, relevance=seed)
    expected = rel_of(plain, *inputs, relevance=seed)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)
    signal.mode = "relevance"  # the same rule in relevance mode is LRP, not the gradient
    relevance = rel_of(with_rule, *inputs, relevance=seed)
    assert any(not torch.allclose(r, e) for r, e in zip(relevance, expected, strict=True))


def test_lrp_one_forward_equals_the_two_pass_reference(tiny):
    """The one-forward LRP against the obvious two passes (``_reference.two_pass_lrp_row``)."""
    torch.manual_seed(5)
    clips = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    reference = two_pass_lrp_row(tiny, clips)
    result = LRPAttribution(tiny)._attribute(clips, None)
    # The row starts as the class token's one-hot; what the blocks add is tiny for a random model
    # (about 1e-11), so compare that part on its own scale.
    start = torch.zeros_like(reference).flatten(1)
    start[:, 0] = 1
    added, expected = result.extras["class_row"] - start.view_as(reference), reference - start.view_as(reference)
    scale = float(expected.abs().max())
    assert scale > 0
    torch.testing.assert_close(added / scale, expected / scale, rtol=1e-4, atol=1e-4)


def test_linear_epsilon_closed_form_and_conservation():
    gen = torch.Generator().manual_seed(4)
    x, w, b = torch.randn(3, 5, generator=gen), torch.randn(4, 5, generator=gen), torch.randn(4, generator=gen)
    r_out = torch.rand(3, 4, generator=gen)
    (r_in,) = rel_of(lambda x: LinearEpsilon.apply(x, w, b), x, relevance=r_out)
    contrib = torch.einsum("ij,kj->ikj", x, w)  # x_j W_kj; the bias takes no share
    expected = torch.einsum("ikj,ik->ij", contrib, r_out / contrib.sum(-1))
    torch.testing.assert_close(r_in, expected)
    torch.testing.assert_close(r_in.sum(), r_out.sum())
    torch.testing.assert_close(LinearEpsilon.apply(x, w, b), x @ w.T + b)


def test_lrp_with_the_epsilon_rule_conserves_and_differs_from_zplus(tiny):
    clips = torch.rand(2, 3, 3, 64, 64) * 2 - 1
    eps = explain(tiny, clips, method="lrp", linear_rule="epsilon")
    zplus = explain(tiny, clips, method="lrp")
    torch.testing.assert_close(eps.extras["conservation"], torch.ones(2), rtol=0, atol=CONSERVATION_TOL)
    assert eps.settings["linear_rule"] == "epsilon"
    assert not torch.allclose(eps.extras["token_relevance"], zplus.extras["token_relevance"])
    with pytest.raises(ValueError, match="linear_rule"):
        explain(tiny, clips, method="lrp", linear_rule="alpha2beta1")

using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Training;

/// <summary>
/// A model's parameters gathered into one contiguous buffer, and their gradients into another, so that
/// the optimizer, the EMA, gradient clipping and the all-reduce each run a handful of kernels over the
/// whole model instead of several per parameter tensor (on a GPU, TerDiT-S training was bound by those
/// per-tensor launches). Construction copies every parameter into <see cref="Data"/> and re-points the
/// parameter at its slice (<c>Tensor.set_</c>), then installs the matching slice of <see cref="Grad"/> as
/// its gradient: backward accumulates into those views in place (autograd adds to a gradient that is
/// already defined). The parameter objects stay the model's, so forward code and state dicts see no change.
/// <para>
/// Rules that keep the sharing intact: never assign <c>param.grad</c> or move a parameter (<c>.to()</c>)
/// afterwards; zero the gradients with <see cref="ZeroGrad"/> (not set them to null). All parameters must
/// share one dtype and device and require gradients.
/// </para>
/// </summary>
public sealed class FlatParameters : IDisposable
{
    readonly (string Name, Parameter Param, long Offset)[] entries;

    public FlatParameters(IEnumerable<(string Name, Parameter Param)> parameters)
    {
        var list = parameters.ToArray();
        if (list.Length == 0) throw new ArgumentException("no parameters to flatten");
        var (dtype, device) = (list[0].Param.dtype, list[0].Param.device);
        foreach (var (name, p) in list)
        {
            if (!p.requires_grad) throw new ArgumentException($"parameter {name} does not require a gradient; leave it out");
            if (p.dtype != dtype || p.device.ToString() != device.ToString())
                throw new ArgumentException($"parameter {name} is {p.dtype} on {p.device}, the first one {dtype} on {device}: one dtype and device only");
        }
        long offset = 0;
        entries = list.Select(e => { var entry = (e.Name, e.Param, offset); offset += e.Param.NumberOfElements; return entry; }).ToArray();
        Data = torch.empty(offset, dtype, device).DetachFromDisposeScope();   // (P)
        Grad = torch.zeros(offset, dtype, device).DetachFromDisposeScope();   // (P)
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        foreach (var (_, p, start) in entries)
        {
            var slice = Slice(Data, start, p);
            slice.copy_(p);
            p.set_(slice);
            p.grad = Slice(Grad, start, p);
        }
    }

    /// <summary>All parameters, concatenated in construction order (P elements); the parameters are views of it.</summary>
    public Tensor Data { get; }

    /// <summary>All gradients, laid out like <see cref="Data"/>; the parameters' <c>grad</c> are views of it.</summary>
    public Tensor Grad { get; }

    /// <summary>A new zero buffer laid out like <see cref="Data"/> (optimizer moments, EMA weights).</summary>
    public Tensor ZerosLikeData() => torch.zeros_like(Data).DetachFromDisposeScope();

    /// <summary>Per-parameter views (name, parameter-shaped view) of <paramref name="flat"/>, a buffer laid out like <see cref="Data"/>.</summary>
    public IEnumerable<(string Name, Tensor View)> Views(Tensor flat)
    {
        if (flat.NumberOfElements != Data.NumberOfElements) throw new ArgumentException($"buffer has {flat.NumberOfElements} elements, the parameters {Data.NumberOfElements}");
        return entries.Select(e => (e.Name, Slice(flat, e.Offset, e.Param)));
    }

    /// <summary>Sets every gradient to zero (one kernel).</summary>
    public void ZeroGrad()
    {
        using var _ = torch.no_grad();
        Grad.zero_();
    }

    /// <summary>
    /// Scales the gradients so that their global L2 norm is at most <paramref name="maxNorm"/> (PyTorch's
    /// <c>clip_grad_norm_</c>: coefficient <c>min(1, maxNorm / (norm + 1e-6))</c>); returns the norm before
    /// clipping. <c>double.PositiveInfinity</c> only measures.
    /// </summary>
    public double ClipGradNorm(double maxNorm)
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        using var s = new ScalarHolder();
        var norm = Grad.norm();                                                     // ()
        if (double.IsFinite(maxNorm)) Grad.mul_((s.Of(maxNorm) / norm.Plus(s.Of(1e-6))).clamp_max(s.Of(1.0)));
        return norm.item<float>();
    }

    static Tensor Slice(Tensor flat, long offset, Parameter p) => flat.narrow(0, offset, p.NumberOfElements).view(p.shape);

    public void Dispose()
    {
        Data.Dispose();
        Grad.Dispose();
    }
}

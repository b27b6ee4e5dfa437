using TorchSharp;
using static TorchSharp.torch;

namespace TerDiT;

/// <summary>
/// Scalars that stay alive while libtorch reads them. TorchSharp turns a number passed where it takes a
/// <see cref="Scalar"/> (<c>x * 0.5</c>, <c>t.lt(0)</c>, and inside its own overloads the alpha of 1 of
/// <c>a + b</c> or the exponent of <c>square()</c>) into a Scalar that nothing references once its handle has
/// reached native code; the finalizer may free it while libtorch still reads it, which shows as "Unknown scalar
/// type", a wrong value or a crash under memory pressure. Every Scalar this project passes is a constant here
/// (never collected) or one a <see cref="ScalarHolder"/> keeps until the calls that read it have returned;
/// ScalarSafetyTests checks the compiled code for it.
/// </summary>
public static class Scalars
{
    public static readonly Scalar MinusOne = (-1).ToScalar();
    public static readonly Scalar Zero = 0.ToScalar();
    public static readonly Scalar One = 1.ToScalar();
    public static readonly Scalar Two = 2.ToScalar();

    /// <summary><c>a + b</c>, with an alpha of 1 that stays alive.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary><c>a + s</c>, with an alpha of 1 that stays alive.</summary>
    public static Tensor Plus(this Tensor a, Scalar s) => a.add(s, One);

    /// <summary><c>a += b</c> in place, with an alpha of 1 that stays alive.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary><c>a += s</c> in place, with an alpha of 1 that stays alive.</summary>
    public static Tensor PlusInPlace(this Tensor a, Scalar s) => a.add_(s, One);

    /// <summary><c>s − x</c> (TorchSharp's <c>s - x</c> passes an unreferenced alpha).</summary>
    public static Tensor Minus(Scalar s, Tensor x) => x.neg().add(s, One);

    /// <summary><c>x²</c> element-wise (TorchSharp's <c>square()</c> passes an unreferenced exponent).</summary>
    public static Tensor Squared(this Tensor x) => x.mul(x);
}

/// <summary>
/// Keeps the Scalars it makes until it is disposed: <c>using var s = new ScalarHolder();</c> then <c>x.mul(s.Of(scale))</c>.
/// </summary>
public sealed class ScalarHolder : IDisposable
{
    readonly List<Scalar> held = [];

    public Scalar Of(double value) => Hold(value.ToScalar());

    public Scalar Of(long value) => Hold(value.ToScalar());

    Scalar Hold(Scalar scalar)
    {
        held.Add(scalar);
        return scalar;
    }

    public void Dispose()
    {
        foreach (var scalar in held) scalar.Dispose();
        held.Clear();
    }
}

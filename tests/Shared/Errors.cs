namespace TerDiT.Testing;

/// <summary>Error measures the tests' tolerances are stated in. Linked into both test projects.</summary>
public static class Errors
{
    /// <summary>max |actual − expected| / max |expected| (the lengths must agree).</summary>
    public static double MaxRelative(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) throw new ArgumentException($"{actual.Length} values against {expected.Length}");
        double err = 0, scale = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            err = Math.Max(err, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return err / scale;
    }
}

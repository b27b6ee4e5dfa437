namespace TerDiT.Runtime.Ops;

/// <summary>
/// Plain scalar versions of the VAE's ops in PyTorch's channels-first layout (C, H, W), double
/// accumulation: the specification <see cref="Conv2d"/> and <see cref="GroupNorm"/> (channels-last)
/// are tested against, so a test also checks the layout change.
/// </summary>
public static class ConvReference
{
    /// <summary>
    /// y (Cout, H', W') = conv2d(upsample(x) , weight (Cout, Cin, k, k), padding k / 2) + bias, x (Cin, H, W),
    /// where upsample repeats each pixel <paramref name="scale"/>×<paramref name="scale"/> (nearest) and H' = scale·H.
    /// </summary>
    public static float[] Conv2d(ReadOnlySpan<float> x, int cin, int height, int width, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        int cout, int kernel, int scale = 1)
    {
        int outH = height * scale, outW = width * scale, half = kernel / 2;
        var y = new float[cout * outH * outW];
        for (int o = 0; o < cout; o++)
            for (int r = 0; r < outH; r++)
                for (int c = 0; c < outW; c++)
                {
                    double s = bias.IsEmpty ? 0 : bias[o];
                    for (int i = 0; i < cin; i++)
                        for (int ky = 0; ky < kernel; ky++)
                            for (int kx = 0; kx < kernel; kx++)
                            {
                                int yy = r + ky - half, xx = c + kx - half;
                                if (yy < 0 || yy >= outH || xx < 0 || xx >= outW) continue;
                                s += (double)weight[((o * cin + i) * kernel + ky) * kernel + kx] * x[(i * height + yy / scale) * width + xx / scale];
                            }
                    y[(o * outH + r) * outW + c] = (float)s;
                }
        return y;
    }

    /// <summary>GroupNorm of x (C, H, W) with G groups, then SiLU when asked.</summary>
    public static float[] GroupNorm(ReadOnlySpan<float> x, int channels, int pixels, int groups, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        float eps, bool silu)
    {
        int per = channels / groups;
        var y = new float[x.Length];
        for (int g = 0; g < groups; g++)
        {
            double mean = 0, variance = 0;
            for (int i = g * per * pixels; i < (g + 1) * per * pixels; i++) mean += x[i];
            mean /= per * pixels;
            for (int i = g * per * pixels; i < (g + 1) * per * pixels; i++) variance += (x[i] - mean) * (x[i] - mean);
            double inv = 1 / Math.Sqrt(variance / (per * pixels) + eps);
            for (int c = g * per; c < (g + 1) * per; c++)
                for (int p = 0; p < pixels; p++)
                {
                    double v = (x[c * pixels + p] - mean) * inv * gamma[c] + beta[c];
                    y[c * pixels + p] = (float)(silu ? v / (1 + Math.Exp(-v)) : v);
                }
        }
        return y;
    }
}

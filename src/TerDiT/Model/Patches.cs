using static TorchSharp.torch;

namespace TerDiT.Model;

/// <summary>
/// Image ↔ token layout of the authors' code (docs/PAPER.md §8). Tokens are in row-major patch order.
/// </summary>
public static class Patches
{
    /// <summary>
    /// (N, C, H, W) → (N, T, C·p·p), T = (H/p)(W/p); the features of a token are ordered
    /// (channel, row-in-patch, column-in-patch).
    /// </summary>
    public static Tensor Patchify(Tensor x, int p)
    {
        if (x.dim() != 4) throw new ArgumentException($"patchify expects (N, C, H, W), got shape [{string.Join(", ", x.shape)}]");
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        if (h % p != 0 || w % p != 0) throw new ArgumentException($"image {h}×{w} is not a multiple of patch size {p}");
        return x.view(n, c, h / p, p, w / p, p)   // (N, C, H/p, p, W/p, p)
            .permute(0, 2, 4, 1, 3, 5)            // (N, H/p, W/p, C, p, p)
            .reshape(n, h / p * (w / p), c * p * p);
    }

    /// <summary>
    /// (N, T, p·p·C) with features ordered (row-in-patch, column-in-patch, channel) →
    /// (N, C, gridH·p, gridW·p).
    /// </summary>
    public static Tensor Unpatchify(Tensor tokens, int p, int channels, int gridH, int gridW)
    {
        long n = tokens.shape[0];
        if (tokens.dim() != 3 || tokens.shape[1] != (long)gridH * gridW || tokens.shape[2] != (long)p * p * channels)
            throw new ArgumentException($"unpatchify expects (N, {gridH * gridW}, {p * p * channels}), got shape [{string.Join(", ", tokens.shape)}]");
        return tokens.view(n, gridH, gridW, p, p, channels)  // (N, h, w, p, q, C)
            .permute(0, 5, 1, 3, 2, 4)                        // (N, C, h, p, w, q)
            .reshape(n, channels, gridH * p, gridW * p);
    }
}

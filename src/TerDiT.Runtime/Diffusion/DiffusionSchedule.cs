namespace TerDiT.Runtime.Diffusion;

/// <summary>
/// The float64 arithmetic of a Gaussian diffusion (DDPM / IDDPM / DiT): betas, cumulative products,
/// q(x_t | x_0) and posterior q(x_{t-1} | x_t, x_0) coefficients, and timestep respacing.
/// Pure C# so both the TorchSharp diffusion and the libtorch-free runtime samplers use it.
/// </summary>
/// <remarks>
/// Index <c>i</c> of every array is a step of <em>this</em> schedule (0..<see cref="NumTimesteps"/>−1);
/// <see cref="TimestepMap"/>[i] is the original timestep (0..999 for DiT) the model must receive.
/// For an unspaced schedule the map is the identity.
/// </remarks>
public sealed class DiffusionSchedule
{
    readonly double[] _betas, _alphasCumprod, _alphasCumprodPrev, _alphasCumprodNext;
    readonly double[] _sqrtAlphasCumprod, _sqrtOneMinusAlphasCumprod, _sqrtRecipAlphasCumprod, _sqrtRecipm1AlphasCumprod;
    readonly double[] _posteriorVariance, _posteriorLogVarianceClipped, _posteriorMeanCoef1, _posteriorMeanCoef2;
    readonly double[] _logBetas, _fixedLargeVariance, _fixedLargeLogVariance;
    readonly int[] _timestepMap;

    /// <summary>
    /// Builds a schedule from its betas. <paramref name="timestepMap"/> gives, per step, the original
    /// timestep index passed to the model (identity when null).
    /// </summary>
    /// <exception cref="ArgumentException">betas empty or outside (0, 1], or map of another length / not increasing.</exception>
    public DiffusionSchedule(double[] betas, int[]? timestepMap = null)
    {
        ArgumentNullException.ThrowIfNull(betas);
        if (betas.Length == 0) throw new ArgumentException("a diffusion schedule needs at least one step", nameof(betas));
        for (int i = 0; i < betas.Length; i++)
            if (!(betas[i] > 0 && betas[i] <= 1))
                throw new ArgumentException($"beta[{i}] = {betas[i]} is outside (0, 1]", nameof(betas));
        int n = betas.Length;
        timestepMap ??= Enumerable.Range(0, n).ToArray();
        if (timestepMap.Length != n)
            throw new ArgumentException($"timestep map has {timestepMap.Length} entries for {n} steps", nameof(timestepMap));
        for (int i = 0; i < n; i++)
            if (timestepMap[i] < 0 || (i > 0 && timestepMap[i] <= timestepMap[i - 1]))
                throw new ArgumentException($"timestep map must be non-negative and strictly increasing (entry {i} = {timestepMap[i]})", nameof(timestepMap));

        _betas = (double[])betas.Clone();
        _timestepMap = (int[])timestepMap.Clone();
        _alphasCumprod = new double[n];
        double acc = 1.0;
        for (int i = 0; i < n; i++) { acc *= 1.0 - betas[i]; _alphasCumprod[i] = acc; }
        _alphasCumprodPrev = new double[n];
        _alphasCumprodNext = new double[n];
        for (int i = 0; i < n; i++)
        {
            _alphasCumprodPrev[i] = i == 0 ? 1.0 : _alphasCumprod[i - 1];
            _alphasCumprodNext[i] = i == n - 1 ? 0.0 : _alphasCumprod[i + 1];
        }
        _sqrtAlphasCumprod = Map(_alphasCumprod, a => Math.Sqrt(a));
        _sqrtOneMinusAlphasCumprod = Map(_alphasCumprod, a => Math.Sqrt(1.0 - a));
        _sqrtRecipAlphasCumprod = Map(_alphasCumprod, a => Math.Sqrt(1.0 / a));
        _sqrtRecipm1AlphasCumprod = Map(_alphasCumprod, a => Math.Sqrt(1.0 / a - 1.0));

        _posteriorVariance = new double[n];
        _posteriorMeanCoef1 = new double[n];
        _posteriorMeanCoef2 = new double[n];
        for (int i = 0; i < n; i++)
        {
            double ac = _alphasCumprod[i], acPrev = _alphasCumprodPrev[i], b = betas[i];
            _posteriorVariance[i] = b * (1.0 - acPrev) / (1.0 - ac);
            _posteriorMeanCoef1[i] = b * Math.Sqrt(acPrev) / (1.0 - ac);
            _posteriorMeanCoef2[i] = (1.0 - acPrev) * Math.Sqrt(1.0 - b) / (1.0 - ac);
        }
        // The posterior variance is 0 at step 0; its log is clipped by repeating step 1 (IDDPM).
        // A one-step schedule has no step 1: there the clipped log is of beta_0 (an IDDPM edge case it leaves empty).
        _posteriorLogVarianceClipped = new double[n];
        for (int i = 0; i < n; i++)
            _posteriorLogVarianceClipped[i] = Math.Log(n == 1 ? betas[0] : _posteriorVariance[i == 0 ? 1 : i]);
        _logBetas = Map(_betas, Math.Log);
        // "Fixed large" variance: beta_t, except posterior variance at step 0 (IDDPM, better decoder log-likelihood).
        _fixedLargeVariance = new double[n];
        for (int i = 0; i < n; i++) _fixedLargeVariance[i] = i == 0 && n > 1 ? _posteriorVariance[1] : betas[i];
        _fixedLargeLogVariance = Map(_fixedLargeVariance, Math.Log);
    }

    /// <summary>
    /// DiT's linear schedule: <paramref name="numTimesteps"/> betas evenly spaced from
    /// <c>betaStart·1000/T</c> to <c>betaEnd·1000/T</c> (numpy <c>linspace</c>: start + i·step, last = end exactly).
    /// </summary>
    public static DiffusionSchedule Linear(int numTimesteps = 1000, double betaStart = 1e-4, double betaEnd = 0.02)
    {
        if (numTimesteps < 1) throw new ArgumentOutOfRangeException(nameof(numTimesteps), numTimesteps, "need at least one timestep");
        double scale = 1000.0 / numTimesteps, start = scale * betaStart, end = scale * betaEnd;
        var betas = new double[numTimesteps];
        double step = numTimesteps == 1 ? 0 : (end - start) / (numTimesteps - 1);
        for (int i = 0; i < numTimesteps; i++) betas[i] = start + i * step;
        betas[^1] = end;
        return new DiffusionSchedule(betas);
    }

    /// <summary>
    /// The steps kept when spacing <paramref name="numTimesteps"/> steps down to <paramref name="count"/>,
    /// ascending: IDDPM/DiT <c>space_timesteps(numTimesteps, str(count))</c> with one section.
    /// The stride is <c>(numTimesteps−1)/(count−1)</c> (1 when count = 1), accumulated in float64 and
    /// each position rounded half-to-even (Python's <c>round</c>); so the first step is 0 and the last is numTimesteps−1.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">count outside 1..numTimesteps.</exception>
    public static int[] SpacedTimesteps(int numTimesteps, int count)
    {
        if (numTimesteps < 1) throw new ArgumentOutOfRangeException(nameof(numTimesteps), numTimesteps, "need at least one timestep");
        if (count < 1 || count > numTimesteps)
            throw new ArgumentOutOfRangeException(nameof(count), count, $"cannot divide a section of {numTimesteps} steps into {count}");
        double stride = count == 1 ? 1.0 : (numTimesteps - 1) / (double)(count - 1);
        var steps = new int[count];
        double cur = 0.0;
        for (int i = 0; i < count; i++)
        {
            steps[i] = (int)Math.Round(cur, MidpointRounding.ToEven);
            cur += stride;
        }
        return steps;
    }

    /// <summary>
    /// This schedule respaced to <paramref name="count"/> steps (IDDPM <c>SpacedDiffusion</c>): the steps
    /// <see cref="SpacedTimesteps"/>(<see cref="NumTimesteps"/>, count) kept by <see cref="Respace(IReadOnlyList{int})"/>.
    /// </summary>
    public DiffusionSchedule Respace(int count) => Respace(SpacedTimesteps(NumTimesteps, count));

    /// <summary>
    /// This schedule reduced to the steps <paramref name="kept"/> (strictly increasing indices of this schedule), with
    /// betas recomputed so the kept cumulative products are unchanged: <c>beta'_j = 1 − ᾱ[k_j] / ᾱ[k_{j−1}]</c>
    /// (ᾱ before the first = 1). The new map sends step j to this schedule's original timestep <c>TimestepMap[k_j]</c>.
    /// </summary>
    /// <exception cref="ArgumentException">kept is empty, not strictly increasing, or outside 0..NumTimesteps−1.</exception>
    public DiffusionSchedule Respace(IReadOnlyList<int> kept)
    {
        ArgumentNullException.ThrowIfNull(kept);
        int count = kept.Count;
        if (count == 0) throw new ArgumentException("a respaced schedule needs at least one step", nameof(kept));
        var betas = new double[count];
        var map = new int[count];
        double last = 1.0;
        for (int j = 0; j < count; j++)
        {
            if (kept[j] < 0 || kept[j] >= NumTimesteps || (j > 0 && kept[j] <= kept[j - 1]))
                throw new ArgumentException($"kept steps must be strictly increasing in 0..{NumTimesteps - 1} (entry {j} = {kept[j]})", nameof(kept));
            double ac = _alphasCumprod[kept[j]];
            betas[j] = 1.0 - ac / last;
            last = ac;
            map[j] = _timestepMap[kept[j]];
        }
        return new DiffusionSchedule(betas, map);
    }

    /// <summary>Number of steps of this schedule.</summary>
    public int NumTimesteps => _betas.Length;

    /// <summary>Step i → original timestep given to the model.</summary>
    public ReadOnlySpan<int> TimestepMap => _timestepMap;
    /// <summary>β_t.</summary>
    public ReadOnlySpan<double> Betas => _betas;
    /// <summary>log β_t (the "max" log-variance of the learned range).</summary>
    public ReadOnlySpan<double> LogBetas => _logBetas;
    /// <summary>ᾱ_t = ∏_{s≤t}(1 − β_s).</summary>
    public ReadOnlySpan<double> AlphasCumprod => _alphasCumprod;
    /// <summary>ᾱ_{t−1}, with ᾱ_{−1} = 1.</summary>
    public ReadOnlySpan<double> AlphasCumprodPrev => _alphasCumprodPrev;
    /// <summary>ᾱ_{t+1}, with 0 after the last step.</summary>
    public ReadOnlySpan<double> AlphasCumprodNext => _alphasCumprodNext;
    /// <summary>√ᾱ_t.</summary>
    public ReadOnlySpan<double> SqrtAlphasCumprod => _sqrtAlphasCumprod;
    /// <summary>√(1 − ᾱ_t).</summary>
    public ReadOnlySpan<double> SqrtOneMinusAlphasCumprod => _sqrtOneMinusAlphasCumprod;
    /// <summary>√(1/ᾱ_t).</summary>
    public ReadOnlySpan<double> SqrtRecipAlphasCumprod => _sqrtRecipAlphasCumprod;
    /// <summary>√(1/ᾱ_t − 1).</summary>
    public ReadOnlySpan<double> SqrtRecipm1AlphasCumprod => _sqrtRecipm1AlphasCumprod;
    /// <summary>β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t), the variance of q(x_{t−1} | x_t, x_0); 0 at t = 0.</summary>
    public ReadOnlySpan<double> PosteriorVariance => _posteriorVariance;
    /// <summary>log β̃_t with step 0 replaced by step 1 (the "min" log-variance of the learned range).</summary>
    public ReadOnlySpan<double> PosteriorLogVarianceClipped => _posteriorLogVarianceClipped;
    /// <summary>Coefficient of x_0 in the posterior mean: β_t √ᾱ_{t−1} / (1 − ᾱ_t).</summary>
    public ReadOnlySpan<double> PosteriorMeanCoef1 => _posteriorMeanCoef1;
    /// <summary>Coefficient of x_t in the posterior mean: (1 − ᾱ_{t−1}) √(1 − β_t) / (1 − ᾱ_t).</summary>
    public ReadOnlySpan<double> PosteriorMeanCoef2 => _posteriorMeanCoef2;
    /// <summary>"Fixed large" variance: β_t, with β̃_1 at step 0.</summary>
    public ReadOnlySpan<double> FixedLargeVariance => _fixedLargeVariance;
    /// <summary>log of <see cref="FixedLargeVariance"/>.</summary>
    public ReadOnlySpan<double> FixedLargeLogVariance => _fixedLargeLogVariance;

    static double[] Map(double[] a, Func<double, double> f)
    {
        var r = new double[a.Length];
        for (int i = 0; i < a.Length; i++) r[i] = f(a[i]);
        return r;
    }
}

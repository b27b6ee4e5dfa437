namespace TerDiT.Runtime.Import;

/// <summary>Element types of PyTorch storages that <see cref="SafeUnpickler"/> accepts.</summary>
public enum TorchDType
{
    Float32,
    Float64,
    Float16,
    BFloat16,
    UInt8,
    Int8,
    Int16,
    Int32,
    Int64,
    Bool,
}

public static class TorchDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this TorchDType t) => t switch
    {
        TorchDType.Float64 or TorchDType.Int64 => 8,
        TorchDType.Float32 or TorchDType.Int32 => 4,
        TorchDType.Float16 or TorchDType.BFloat16 or TorchDType.Int16 => 2,
        TorchDType.UInt8 or TorchDType.Int8 or TorchDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>The legacy storage class names <c>torch.save</c> pickles (<c>torch.FloatStorage</c>, …).</summary>
    internal static readonly IReadOnlyDictionary<string, TorchDType> StorageNames = new Dictionary<string, TorchDType>
    {
        ["FloatStorage"] = TorchDType.Float32, ["DoubleStorage"] = TorchDType.Float64, ["HalfStorage"] = TorchDType.Float16,
        ["BFloat16Storage"] = TorchDType.BFloat16, ["ByteStorage"] = TorchDType.UInt8, ["CharStorage"] = TorchDType.Int8,
        ["ShortStorage"] = TorchDType.Int16, ["IntStorage"] = TorchDType.Int32, ["LongStorage"] = TorchDType.Int64,
        ["BoolStorage"] = TorchDType.Bool,
    };
}

/// <summary>A Python tuple.</summary>
public sealed record PickleTuple(IReadOnlyList<object?> Items);

/// <summary>
/// A Python dict or <c>collections.OrderedDict</c>, in insertion order. Keys are strings, integers,
/// booleans or None (the hashable values the reader builds). <see cref="Attributes"/> holds the
/// instance attributes an OrderedDict was pickled with (a state dict's <c>_metadata</c>).
/// </summary>
public sealed class PickleDict
{
    readonly OrderedDictionary<object, object?> _items = new();

    public int Count => _items.Count;
    public IEnumerable<KeyValuePair<object, object?>> Items => _items;
    public PickleDict? Attributes { get; internal set; }

    /// <summary>Sets a key (Python semantics: a repeated key keeps its first position and takes the new value).</summary>
    internal void Set(object key, object? value) => _items[key] = value;

    public bool TryGet(object key, out object? value) => _items.TryGetValue(key, out value);
}

/// <summary>An <c>argparse.Namespace</c>: its attributes by name.</summary>
public sealed class PickleNamespace
{
    public Dictionary<string, object?> Fields { get; } = new(StringComparer.Ordinal);
}

/// <summary>A storage of a PyTorch checkpoint: <see cref="Elements"/> values of <see cref="DType"/> in archive member <c>data/{Key}</c>.</summary>
public sealed record TorchStorage(TorchDType DType, string Key, long Elements, ZipMember Member);

/// <summary>
/// A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a strided view of a storage.
/// Construction checks that every element it addresses lies inside the storage.
/// </summary>
public sealed record TorchTensor
{
    public TorchStorage Storage { get; }
    public long Offset { get; }
    public long[] Shape { get; }
    public long[] Stride { get; }
    public TorchDType DType => Storage.DType;
    public long Elements { get; }

    /// <summary>Most dimensions accepted.</summary>
    public const int MaxDims = 8;

    /// <exception cref="ArgumentException">Negative sizes or strides, too many dimensions, or a view past the storage's end.</exception>
    public TorchTensor(TorchStorage storage, long offset, long[] shape, long[] stride)
    {
        if (shape.Length != stride.Length) throw new ArgumentException($"tensor has {shape.Length} sizes but {stride.Length} strides");
        if (shape.Length > MaxDims) throw new ArgumentException($"tensor has {shape.Length} dimensions, at most {MaxDims} are accepted");
        if (offset < 0 || shape.Any(s => s < 0) || stride.Any(s => s < 0))
            throw new ArgumentException($"tensor has a negative offset, size or stride (offset {offset}, shape [{string.Join(", ", shape)}], stride [{string.Join(", ", stride)}])");
        long elements = 1, last = offset;
        try
        {
            foreach (long s in shape) elements = checked(elements * s);
            if (elements > 0)
                for (int i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1) * stride[i]);
        }
        catch (OverflowException) { throw new ArgumentException($"tensor shape [{string.Join(", ", shape)}] with strides [{string.Join(", ", stride)}] overflows 64 bits"); }
        if (elements > 0 && last >= storage.Elements)
            throw new ArgumentException($"tensor view (offset {offset}, shape [{string.Join(", ", shape)}], stride [{string.Join(", ", stride)}]) reaches element {last} of a {storage.Elements}-element storage");
        (Storage, Offset, Shape, Stride, Elements) = (storage, offset, shape, stride, elements);
    }

    /// <summary>Whether the view is the row-major (C-order) layout of its shape.</summary>
    public bool IsContiguous
    {
        get
        {
            long expected = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Stride[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }
}

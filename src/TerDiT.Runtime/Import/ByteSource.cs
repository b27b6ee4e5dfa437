using System.IO.MemoryMappedFiles;

namespace TerDiT.Runtime.Import;

/// <summary>
/// Read-only random access to the bytes of an untrusted file: a memory-mapped file (any size, no
/// copy) or an array (tests, fuzzing). Every slice is bounds-checked against <see cref="Length"/>, so
/// a reader that trusts an offset from the file gets an <see cref="ArgumentOutOfRangeException"/>
/// instead of reading outside it.
/// </summary>
public abstract class ByteSource : IDisposable
{
    /// <summary>The name used in error messages (the file name).</summary>
    public string Name { get; }

    public abstract long Length { get; }

    protected ByteSource(string name) => Name = name;

    /// <summary>The bytes [offset, offset + length), valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<byte> Slice(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Name}: bytes [{offset}, {offset + length}) lie outside the {Length}-byte file");
        return SliceUnchecked(offset, length);
    }

    protected abstract ReadOnlySpan<byte> SliceUnchecked(long offset, int length);

    public virtual void Dispose() { }

    /// <summary>An array's bytes.</summary>
    public static ByteSource FromArray(byte[] bytes, string name) => new ArraySource(bytes, name);

    /// <summary>Maps a file read-only; the mapping lives until <see cref="Dispose"/>.</summary>
    public static ByteSource MapFile(string path) => new MappedSource(path);

    sealed class ArraySource(byte[] bytes, string name) : ByteSource(name)
    {
        public override long Length => bytes.Length;
        protected override ReadOnlySpan<byte> SliceUnchecked(long offset, int length) => bytes.AsSpan((int)offset, length);
    }

    sealed unsafe class MappedSource : ByteSource
    {
        readonly MemoryMappedFile? _map;
        readonly MemoryMappedViewAccessor? _view;
        byte* _base;
        readonly long _length;

        public MappedSource(string path) : base(Path.GetFileName(path))
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            _length = stream.Length;
            if (_length == 0)
            {
                stream.Dispose(); // an empty file cannot be mapped; every slice of it is out of range
                return;
            }
            try { _map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false); }
            catch { stream.Dispose(); throw; }
            try
            {
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _base);
                _base += _view.PointerOffset;
            }
            catch
            {
                _view?.Dispose();
                _map.Dispose();
                throw;
            }
        }

        public override long Length => _length;

        protected override ReadOnlySpan<byte> SliceUnchecked(long offset, int length)
        {
            if (length == 0) return [];
            if (_base == null) throw new ObjectDisposedException(Name);
            return new ReadOnlySpan<byte>(_base + offset, length);
        }

        public override void Dispose()
        {
            if (_base == null) return;
            _base = null;
            _view!.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map!.Dispose();
        }
    }
}

package closure

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// errNotELF marks a file without the ELF magic: a script, or no executable at all.
var errNotELF = errors.New("not an ELF file")

// Sanity limits, so a hostile file cannot make us allocate much: real values are far smaller.
const (
	maxInterp    = 4096
	maxDynamic   = 1 << 20
	maxDynString = 1 << 16
)

// object is what the loader needs from one ELF file, read once per file and kept by the Resolver.
// Only the ELF header, the program headers, PT_INTERP and PT_DYNAMIC are read: section headers may
// be stripped, and ld.so does not use them either.
type object struct {
	abi
	interp     string   // PT_INTERP
	needed     []string // DT_NEEDED, in order
	rpath      []string // DT_RPATH; nil when DT_RUNPATH is present, since ld.so then ignores it
	runpath    []string // DT_RUNPATH
	hasRunpath bool
	soname     string
	nodeflib   bool // DF_1_NODEFLIB: ld.so skips ld.so.cache and the default dirs for this object's deps
}

type objectResult struct {
	obj *object
	err error
}

// segment is a program header, both classes.
type segment struct {
	typ                elf.ProgType
	off, vaddr, filesz uint64
}

// object reads the ELF file at real (a symlink-free path under the root), once.
func (r *Resolver) object(real string) (*object, error) {
	if o, ok := r.objects[real]; ok {
		return o.obj, o.err
	}
	obj, err := r.readObject(real)
	err = renamePathError(err, real)
	r.objects[real] = objectResult{obj, err}
	return obj, err
}

func (r *Resolver) readObject(real string) (*object, error) {
	f, err := r.dir.open(real)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readObject(f)
}

func readObject(ra io.ReaderAt) (*object, error) {
	var ident [elf.EI_NIDENT]byte
	if _, err := ra.ReadAt(ident[:], 0); err != nil {
		if err == io.EOF {
			return nil, errNotELF
		}
		return nil, err
	}
	if string(ident[:4]) != elf.ELFMAG {
		return nil, errNotELF
	}
	o := &object{abi: abi{class: elf.Class(ident[elf.EI_CLASS]), data: elf.Data(ident[elf.EI_DATA])}}
	bo, err := o.byteOrder()
	if err != nil {
		return nil, err
	}
	segs, err := o.readHeaders(ra, bo)
	if err != nil {
		return nil, fmt.Errorf("malformed ELF: %w", err)
	}
	for _, s := range segs {
		switch s.typ {
		case elf.PT_INTERP:
			o.interp, err = readInterp(ra, s)
		case elf.PT_DYNAMIC:
			err = o.readDynamic(ra, bo, s, segs)
		}
		if err != nil {
			return nil, fmt.Errorf("malformed ELF: %w", err)
		}
	}
	return o, nil
}

func (o *object) byteOrder() (binary.ByteOrder, error) {
	switch o.data {
	case elf.ELFDATA2LSB:
		return binary.LittleEndian, nil
	case elf.ELFDATA2MSB:
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("malformed ELF: unknown data encoding %d", o.data)
}

// readHeaders reads the ELF header into o and returns the program headers.
func (o *object) readHeaders(ra io.ReaderAt, bo binary.ByteOrder) ([]segment, error) {
	switch o.class {
	case elf.ELFCLASS64:
		var h elf.Header64
		if err := binary.Read(io.NewSectionReader(ra, 0, int64(binary.Size(h))), bo, &h); err != nil {
			return nil, err
		}
		o.machine, o.flags = elf.Machine(h.Machine), h.Flags
		return readProgs64(ra, bo, h.Phoff, h.Phentsize, h.Phnum)
	case elf.ELFCLASS32:
		var h elf.Header32
		if err := binary.Read(io.NewSectionReader(ra, 0, int64(binary.Size(h))), bo, &h); err != nil {
			return nil, err
		}
		o.machine, o.flags = elf.Machine(h.Machine), h.Flags
		return readProgs32(ra, bo, uint64(h.Phoff), h.Phentsize, h.Phnum)
	}
	return nil, fmt.Errorf("unknown class %d", o.class)
}

func readProgs64(ra io.ReaderAt, bo binary.ByteOrder, off uint64, entsize, n uint16) ([]segment, error) {
	progs, err := readProgs[elf.Prog64](ra, bo, off, entsize, n)
	segs := make([]segment, len(progs))
	for i, p := range progs {
		segs[i] = segment{elf.ProgType(p.Type), p.Off, p.Vaddr, p.Filesz}
	}
	return segs, err
}

func readProgs32(ra io.ReaderAt, bo binary.ByteOrder, off uint64, entsize, n uint16) ([]segment, error) {
	progs, err := readProgs[elf.Prog32](ra, bo, off, entsize, n)
	segs := make([]segment, len(progs))
	for i, p := range progs {
		segs[i] = segment{elf.ProgType(p.Type), uint64(p.Off), uint64(p.Vaddr), uint64(p.Filesz)}
	}
	return segs, err
}

// readProgs decodes the n program headers at off.
func readProgs[P elf.Prog64 | elf.Prog32](ra io.ReaderAt, bo binary.ByteOrder, off uint64, entsize, n uint16) ([]P, error) {
	progs := make([]P, n)
	if n == 0 {
		return nil, nil
	}
	if want := binary.Size(progs[0]); int(entsize) != want {
		return nil, fmt.Errorf("program header size %d, want %d", entsize, want)
	}
	buf := make([]byte, int(n)*int(entsize))
	if _, err := ra.ReadAt(buf, int64(off)); err != nil {
		return nil, fmt.Errorf("program headers: %w", err)
	}
	return progs, binary.Read(bytes.NewReader(buf), bo, progs)
}

func readInterp(ra io.ReaderAt, s segment) (string, error) {
	if s.filesz == 0 || s.filesz > maxInterp {
		return "", fmt.Errorf("PT_INTERP of %d bytes", s.filesz)
	}
	buf := make([]byte, s.filesz)
	if _, err := ra.ReadAt(buf, int64(s.off)); err != nil {
		return "", fmt.Errorf("PT_INTERP: %w", err)
	}
	return string(bytes.TrimRight(buf, "\x00")), nil
}

// readDynamic reads the dynamic section the loader sees: its strings live at DT_STRTAB, a virtual
// address, found in the file through the PT_LOAD segment that maps it.
func (o *object) readDynamic(ra io.ReaderAt, bo binary.ByteOrder, dyn segment, segs []segment) error {
	if dyn.filesz > maxDynamic {
		return fmt.Errorf("PT_DYNAMIC of %d bytes", dyn.filesz)
	}
	buf := make([]byte, dyn.filesz)
	if _, err := ra.ReadAt(buf, int64(dyn.off)); err != nil {
		return fmt.Errorf("PT_DYNAMIC: %w", err)
	}
	d := o.decodeDynamic(buf, bo)
	if len(d.needed) == 0 && !d.hasRPath && !d.hasRunpath && !d.hasSoname {
		return nil
	}
	strtab, ok := fileOffset(segs, d.strtab)
	if !ok {
		return fmt.Errorf("DT_STRTAB %#x not in any PT_LOAD", d.strtab)
	}
	strs := dynStrings{ra: ra, off: strtab, size: d.strsz}
	return o.fillStrings(&strs, d)
}

// dynamic holds the entries of a dynamic section that matter here; strings are still offsets.
type dynamic struct {
	strtab, strsz                   uint64
	needed                          []uint64
	rpath, runpath, soname          uint64
	hasRPath, hasRunpath, hasSoname bool
}

func (o *object) decodeDynamic(buf []byte, bo binary.ByteOrder) dynamic {
	var d dynamic
	step := 16
	if o.class == elf.ELFCLASS32 {
		step = 8
	}
	for i := 0; i+step <= len(buf); i += step {
		tag, val := dynEntry(buf[i:], bo, step)
		switch elf.DynTag(tag) {
		case elf.DT_NULL:
			return d
		case elf.DT_NEEDED:
			d.needed = append(d.needed, val)
		case elf.DT_RPATH:
			d.rpath, d.hasRPath = val, true
		case elf.DT_RUNPATH:
			d.runpath, d.hasRunpath = val, true
		case elf.DT_SONAME:
			d.soname, d.hasSoname = val, true
		case elf.DT_STRTAB:
			d.strtab = val
		case elf.DT_STRSZ:
			d.strsz = val
		case elf.DT_FLAGS_1:
			o.nodeflib = val&uint64(elf.DF_1_NODEFLIB) != 0
		}
	}
	return d
}

func dynEntry(b []byte, bo binary.ByteOrder, step int) (tag int64, val uint64) {
	if step == 8 {
		return int64(int32(bo.Uint32(b))), uint64(bo.Uint32(b[4:]))
	}
	return int64(bo.Uint64(b)), bo.Uint64(b[8:])
}

func (o *object) fillStrings(strs *dynStrings, d dynamic) error {
	for _, off := range d.needed {
		s, err := strs.at(off)
		if err != nil {
			return err
		}
		o.needed = append(o.needed, s)
	}
	var err error
	if d.hasSoname {
		if o.soname, err = strs.at(d.soname); err != nil {
			return err
		}
	}
	if d.hasRunpath {
		o.hasRunpath = true
		o.runpath, err = strs.list(d.runpath)
	} else if d.hasRPath {
		o.rpath, err = strs.list(d.rpath)
	}
	return err
}

// fileOffset maps a virtual address to its place in the file.
func fileOffset(segs []segment, vaddr uint64) (uint64, bool) {
	for _, s := range segs {
		if s.typ == elf.PT_LOAD && s.vaddr <= vaddr && vaddr-s.vaddr < s.filesz {
			return s.off + vaddr - s.vaddr, true
		}
	}
	return 0, false
}

// dynStrings reads NUL-terminated strings from the dynamic string table, one at a time: a library
// needs a handful of its often large table.
type dynStrings struct {
	ra        io.ReaderAt
	off, size uint64
}

func (t *dynStrings) at(i uint64) (string, error) {
	if i >= t.size {
		return "", fmt.Errorf("string offset %d outside DT_STRTAB of %d bytes", i, t.size)
	}
	var sb strings.Builder
	buf := make([]byte, 128)
	for pos := t.off + i; uint64(sb.Len()) < min(t.size-i, maxDynString); pos += uint64(len(buf)) {
		n, err := t.ra.ReadAt(buf, int64(pos))
		if j := bytes.IndexByte(buf[:n], 0); j >= 0 {
			sb.Write(buf[:j])
			return sb.String(), nil
		}
		if err != nil {
			return "", fmt.Errorf("DT_STRTAB: %w", err)
		}
		sb.Write(buf[:n])
	}
	return "", fmt.Errorf("unterminated string at DT_STRTAB+%d", i)
}

// list reads a colon-separated search path (DT_RPATH, DT_RUNPATH).
func (t *dynStrings) list(i uint64) ([]string, error) {
	s, err := t.at(i)
	if err != nil {
		return nil, err
	}
	return strings.Split(s, ":"), nil
}

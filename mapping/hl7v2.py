"""HL7 v2 for SS-MIX2: decode the bytes first (ISO-2022-JP per the standard, Shift_JIS/cp932 in the field,
UTF-8), then split segments (CR, LF or CRLF), fields, repetitions and components. Total functions: no input
makes them raise; what cannot be read is reported as a Japanese warning."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 5 * 1024 * 1024
_SEG_ID = re.compile(r"^[A-Z][A-Z0-9]{2}$")


# --- decoding ----------------------------------------------------------------------------------------------------

def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    """One JIS X 0208 (7-bit) double-byte character to its Shift_JIS bytes (so cp932 can read vendor rows)."""
    s1 = (j1 + 1) // 2 + (0x70 if j1 <= 0x5E else 0xB0)
    if j1 % 2:
        s2 = j2 + (0x1F if j2 <= 0x5F else 0x20)
    else:
        s2 = j2 + 0x7E
    return bytes((s1, s2))


def decode_iso2022jp_lenient(data: bytes) -> tuple[str, bool]:
    """ISO-2022-JP decoder that also reads the NEC/IBM vendor characters (cp50220 style) via cp932.
    Returns (text, clean) where clean is False if some bytes had to be replaced."""
    out: list[str] = []
    ok = True
    mode = "ascii"
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b == 0x1B:
            seq = data[i + 1:i + 4]
            if seq[:2] in (b"$B", b"$@"):
                mode, i = "jis", i + 3
                continue
            if seq[:3] == b"$(D":
                mode, i = "jis0212", i + 4
                continue
            if seq[:3] == b"$(Q" or seq[:3] == b"$(O":
                mode, i = "jis", i + 4
                continue
            if seq[:2] in (b"(B", b"(J"):
                mode, i = "ascii", i + 3
                continue
            if seq[:2] == b"(I":
                mode, i = "kana", i + 3
                continue
            ok = False
            i += 1
            continue
        if b == 0x0E:  # SO: JIS X 0201 katakana (some vendors)
            mode, i = "kana", i + 1
            continue
        if b == 0x0F:
            mode, i = "ascii", i + 1
            continue
        if b in (0x0D, 0x0A):
            out.append(chr(b))
            i += 1
            continue
        if mode in ("jis", "jis0212"):
            if i + 1 < n and 0x21 <= b <= 0x7E and 0x21 <= data[i + 1] <= 0x7E:
                if mode == "jis":
                    try:
                        ch = (b"\x1b$B" + data[i:i + 2]).decode("iso2022_jp")
                    except UnicodeDecodeError:
                        ch = _jis_pair_to_sjis(b, data[i + 1]).decode("cp932", errors="replace")
                else:
                    ch = bytes((0x8F, b | 0x80, data[i + 1] | 0x80)).decode("euc_jp", errors="replace")
                ok = ok and "\ufffd" not in ch
                out.append(ch)
                i += 2
                continue
            ok = False
            out.append("\ufffd")
            i += 1
            continue
        if mode == "kana" and 0x21 <= b <= 0x5F:
            out.append(chr(0xFF61 + b - 0x21))
            i += 1
            continue
        if b < 0x80:
            out.append(chr(b))
        elif 0xA1 <= b <= 0xDF:  # 8-bit half-width katakana mixed in
            out.append(chr(0xFF61 + b - 0xA1))
        else:
            ok = False
            out.append("\ufffd")
        i += 1
    return "".join(out), ok


def _looks_euc_jp(data: bytes) -> bool:
    """EUC-JP (Unix-based EMR exports) is often also *valid* cp932, read as half-width katakana and stray kanji —
    a wrong name rather than an unreadable one. Japanese text in cp932 is practically never valid EUC-JP (kana,
    full-width digits and level-1 kanji have lead bytes 0x81-0x9F). A string of only half-width katakana in cp932
    (bytes 0xA1-0xDF) can be valid EUC-JP too, so EUC-JP also needs a byte above 0xDF (EUC kana rows, trail bytes
    of most kanji)."""
    try:
        data.decode("euc_jp")
    except UnicodeDecodeError:
        return False
    high = [b for b in data if b >= 0x80]
    if not high:
        return False
    return any(b > 0xDF for b in high) or any(b in (0x8E, 0x8F) for b in high)


def decode_bytes(data: bytes) -> tuple[str, str, list[str]]:
    """Bytes of one SS-MIX2 file → (text, encoding used, warnings). Never raises."""
    warnings: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or data[:8] in (b"M\x00S\x00H\x00", b"\x00M\x00S\x00H"):
        # saved as "Unicode" by a Windows tool: UTF-16 with (or, rarely, without) its BOM
        enc = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else \
            ("utf-16-le" if data[:1] == b"M" else "utf-16-be")
        try:
            return data.decode(enc), enc, warnings
        except UnicodeDecodeError:
            text = data.decode(enc, errors="replace")
            warnings.append("UTF-16として読めない文字があり、一部の値を転記していません")
            return text, enc + "(replace)", warnings
    if b"\x1b" in data or b"\x0e" in data:
        for enc in ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_2"):
            try:
                return data.decode(enc), enc, warnings
            except (UnicodeDecodeError, LookupError):
                continue
        text, ok = decode_iso2022jp_lenient(data)
        if not ok:
            warnings.append("ISO-2022-JPとして読めない文字があり、一部の値を転記していません")
        return text, "iso2022_jp(vendor)", warnings
    try:
        return data.decode("ascii"), "ascii", warnings
    except UnicodeDecodeError:
        pass
    # No escape sequences: Shift_JIS (cp932, with the vendor kanji) is what EMRs write when they do not follow
    # ISO-2022-JP, whatever MSH-18 says. Valid UTF-8 is tried first: Japanese text in cp932 is practically
    # never valid UTF-8, while UTF-8 bytes can slip through a cp932 decoder as wrong kanji.
    try:
        return data.decode("utf-8"), "utf-8", warnings
    except UnicodeDecodeError:
        pass
    if _looks_euc_jp(data):
        return data.decode("euc_jp"), "euc_jp", warnings
    try:
        return data.decode("cp932"), "cp932", warnings
    except UnicodeDecodeError:
        pass
    text = data.decode("cp932", errors="replace")
    warnings.append("文字コードを判別できない文字があり、一部の値を転記していません")
    return text, "cp932(replace)", warnings


# --- parsing -----------------------------------------------------------------------------------------------------

@dataclass
class Delims:
    field: str = "|"
    comp: str = "^"
    rep: str = "~"
    esc: str = "\\"
    sub: str = "&"


@dataclass
class Segment:
    name: str
    fields: list[str]     # fields[n] is field n (for MSH, fields[1] is the field separator itself)
    d: Delims

    def raw(self, n: int) -> str:
        return self.fields[n] if 0 <= n < len(self.fields) else ""

    def reps(self, n: int) -> list[str]:
        raw = self.raw(n)
        if self.name == "MSH" and n <= 2:
            return [raw]
        return raw.split(self.d.rep) if raw else []

    def comps(self, n: int, rep: int = 0) -> list[str]:
        reps = self.reps(n)
        if rep >= len(reps):
            return []
        return [self.unescape(c.split(self.d.sub)[0]) for c in reps[rep].split(self.d.comp)]

    def get(self, n: int, comp: int = 1, rep: int = 0) -> str:
        """Field n, component comp (1-based), repetition rep (0-based), unescaped; '' if absent."""
        cs = self.comps(n, rep)
        return cs[comp - 1] if 0 < comp <= len(cs) else ""

    def unescape(self, s: str) -> str:
        e = self.d.esc
        if not e or e not in s:
            return s
        table = {"F": self.d.field, "S": self.d.comp, "R": self.d.rep, "E": e, "T": self.d.sub}
        out: list[str] = []
        i = 0
        while i < len(s):
            if s[i] == e:
                j = s.find(e, i + 1)
                if j > i:
                    code = s[i + 1:j]
                    if code in table:
                        out.append(table[code])
                    elif code in (".br", ".BR"):
                        out.append(" ")
                    elif code[:1] in ("X", "x") and len(code) > 1:
                        out.append(_hex_escape(code[1:]))
                    elif code[:1] in ("C", "M", "Z"):
                        # character-set switch (\Cxxyy\, \Mxxyyzz\) or a locally defined escape: what follows
                        # cannot be read with certainty, so the value must not be pre-filled
                        out.append("\ufffd")
                    # highlighting and other formatting escapes carry no text
                    i = j + 1
                    continue
            out.append(s[i])
            i += 1
        return "".join(out)


def _hex_escape(hexdigits: str) -> str:
    """\\Xhh..\\ (hexadecimal data): ASCII bytes are read as text (\\X0D\\ ...); other bytes are in a character
    set the message does not name reliably, so they become U+FFFD (the value is then not pre-filled)."""
    try:
        raw = bytes.fromhex(hexdigits)
    except ValueError:
        return "\ufffd"
    if raw and all(0x20 <= b < 0x7F or b in (0x09, 0x0A, 0x0D) for b in raw):
        return raw.decode("ascii").replace("\r", " ").replace("\n", " ")
    return "\ufffd"


@dataclass
class Message:
    segments: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    @property
    def msh(self) -> Segment | None:
        return self.first("MSH")

    @property
    def type(self) -> tuple[str, str]:
        m = self.msh
        return (m.get(9, 1).upper(), m.get(9, 2).upper()) if m else ("", "")


def parse_text(text: str) -> list[Message]:
    """Split decoded HL7 text into messages. Segments on CR, LF or CRLF; unknown lines are appended to the
    previous segment (a field value that contained a line break)."""
    lines = re.split(r"\r\n|\r|\n", text.lstrip("\ufeff"))
    messages: list[Message] = []
    cur: Message | None = None
    d = Delims()
    pending: list[str] = []
    junk = 0
    for line in lines:
        # MLLP framing (VT at the start, FS at the end) and NUL padding are transport bytes, never content
        line = line.rstrip("\x1c")
        if not line.strip(" \t\x00\x0b\x0c\x1c"):
            continue
        line = line.lstrip(" \t\x0b\x0c")
        if line.startswith("MSH") and len(line) >= 8:
            sep = line[3]
            enc = line[4:].split(sep, 1)[0]
            d = Delims(field=sep, comp=enc[0:1] or "^", rep=enc[1:2] or "~", esc=enc[2:3] or "\\",
                       sub=enc[3:4] or "&")
            cur = Message()
            messages.append(cur)
            pending = [line]
            fields = line.split(sep)
            cur.segments.append(Segment("MSH", ["MSH", sep, *fields[1:]], d))
            continue
        name = line[:3]
        if cur is not None and _SEG_ID.match(name) and (len(line) == 3 or line[3] == d.field):
            cur.segments.append(Segment(name, line.split(d.field), d))
            pending = [line]
        elif cur is not None and cur.segments and pending:
            # continuation of the previous segment's last field
            last = cur.segments[-1]
            joined = pending[-1] + " " + line
            pending = [joined]
            fields = joined.split(d.field)
            cur.segments[-1] = Segment(last.name, ["MSH", d.field, *fields[1:]] if last.name == "MSH" else fields, d)
        else:
            junk += 1
    if junk and messages:
        messages[0].warnings.append("HL7として解釈できない行を無視しました")
    return messages


def parse_bytes(data: bytes) -> tuple[list[Message], list[str]]:
    if len(data) > MAX_MESSAGE_BYTES:
        return [], ["ファイルが大きすぎるため読み込みませんでした"]
    text, _enc, warnings = decode_bytes(data)
    msgs = parse_text(text)
    if not msgs:
        warnings.append("MSHセグメントがなくHL7メッセージとして読めません")
    for m in msgs:
        warnings += m.warnings
    return msgs, warnings

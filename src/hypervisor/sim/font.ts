/** A 3x5 block font: each glyph is five rows of three bits, top row first. Unknown characters draw as '?'. */
const GLYPHS: Record<string, string> = {
  A: '010101111101101',
  B: '110101110101110',
  C: '011100100100011',
  D: '110101101101110',
  E: '111100110100111',
  F: '111100110100100',
  G: '011100101101011',
  H: '101101111101101',
  I: '111010010010111',
  J: '001001001101010',
  K: '101101110101101',
  L: '100100100100111',
  M: '101111111101101',
  N: '110101101101101',
  O: '010101101101010',
  P: '110101110100100',
  Q: '010101101111011',
  R: '110101110101101',
  S: '011100010001110',
  T: '111010010010010',
  U: '101101101101111',
  V: '101101101101010',
  W: '101101111111101',
  X: '101101010101101',
  Y: '101101010010010',
  Z: '111001010100111',
  '0': '111101101101111',
  '1': '010110010010111',
  '2': '110001010100111',
  '3': '110001010001110',
  '4': '101101111001001',
  '5': '111100110001110',
  '6': '011100111101111',
  '7': '111001010010010',
  '8': '111101111101111',
  '9': '111101111001110',
  '-': '000000111000000',
  _: '000000000000111',
  '.': '000000000000010',
  ':': '000010000010000',
  ' ': '000000000000000',
  '?': '110001010000010',
};

/** Draws `text` at (x, y) with blocks of `scale` pixels, wrapping at `maxWidth`. */
export function drawText(text: string, x: number, y: number, scale: number, plot: (x: number, y: number) => void, maxWidth: number): void {
  const advance = 4 * scale;
  let cx = 0;
  let cy = 0;
  for (const ch of text) {
    if (cx + 3 * scale > maxWidth) {
      cx = 0;
      cy += 6 * scale;
    }
    const g = GLYPHS[ch] ?? GLYPHS['?']!;
    for (let row = 0; row < 5; row++)
      for (let col = 0; col < 3; col++)
        if (g[row * 3 + col] === '1')
          for (let dy = 0; dy < scale; dy++) for (let dx = 0; dx < scale; dx++) plot(x + cx + col * scale + dx, y + cy + row * scale + dy);
    cx += advance;
  }
}

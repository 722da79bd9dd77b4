import fc from 'fast-check'

/** Strings as a hostile device would send them: any code point, lone surrogates, and the characters framings trip on. */
export const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({
    unit: fc.constantFrom('a', '1', '.', ' ', ',', '=', '"', '\\', '\'', '\n', '\r', '\t', '\u0000', '\u001b', '\u007f', '\u0085', '\u009b', '\u2028', '\ud800', '\udfff', 'é', '😀'),
    maxLength: 300,
  }),
)

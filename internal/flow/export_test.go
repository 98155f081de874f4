package flow

// SegMagic is the first bytes of a spool segment, for the external tests.
const SegMagic = segMagic

/**
 * Exact rationals over BigInt, for the reference model: no floating point, no fixed scale. Always
 * reduced, the denominator positive. Rounding to an integer is halves away from zero, the one
 * rounding rule of docs/accounting.md ("Money").
 */
export class Fraction {
  readonly num: bigint;
  readonly den: bigint;

  constructor(num: bigint, den: bigint = 1n) {
    if (den === 0n) throw new RangeError('zero denominator');
    if (den < 0n) {
      num = -num;
      den = -den;
    }
    const g = gcd(num < 0n ? -num : num, den);
    this.num = g > 1n ? num / g : num;
    this.den = g > 1n ? den / g : den;
  }

  static of(x: bigint | number | Fraction): Fraction {
    if (x instanceof Fraction) return x;
    return new Fraction(BigInt(x));
  }

  /** A decimal written as text ("0.8", "0.333333", "12"), exactly. */
  static decimal(text: string): Fraction {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text.trim());
    if (!m) throw new RangeError(`not a decimal: ${text}`);
    const frac = m[3] ?? '';
    const n = BigInt((m[2] ?? '0') + frac) * (m[1] ? -1n : 1n);
    return new Fraction(n, 10n ** BigInt(frac.length));
  }

  add(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return new Fraction(this.num * b.den + b.num * this.den, this.den * b.den);
  }
  sub(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return new Fraction(this.num * b.den - b.num * this.den, this.den * b.den);
  }
  mul(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return new Fraction(this.num * b.num, this.den * b.den);
  }
  div(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return new Fraction(this.num * b.den, this.den * b.num);
  }
  cmp(o: bigint | Fraction): number {
    const b = Fraction.of(o);
    const d = this.num * b.den - b.num * this.den;
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  }
  isZero(): boolean {
    return this.num === 0n;
  }
  min(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return this.cmp(b) <= 0 ? this : b;
  }
  max(o: bigint | Fraction): Fraction {
    const b = Fraction.of(o);
    return this.cmp(b) >= 0 ? this : b;
  }
  /** The nearest integer, halves away from zero. */
  round(): bigint {
    const a = this.num < 0n ? -this.num : this.num;
    const q = (2n * a + this.den) / (2n * this.den);
    return this.num < 0n ? -q : q;
  }
  toString(): string {
    return this.den === 1n ? `${this.num}` : `${this.num}/${this.den}`;
  }
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

export const ZERO = new Fraction(0n);
export const ONE = new Fraction(1n);

import { HttpError } from "../http-error";

/**
 * `Upstash-Retry-Delay` expressions (https://upstash.com/docs/qstash/features/retry#custom-retry-delay): arithmetic on
 * numbers and the variable `retried`, with pow, sqrt, abs, exp, floor, ceil, round, min and max; the result is the
 * wait in milliseconds.
 *
 * A publisher's header is untrusted text, so it is parsed here by a recursive-descent parser that knows only that
 * grammar, never handed to `eval`/`Function`. A library was weighed: `expr-eval` is unmaintained and had an advisory
 * for code execution through its function table, and `mathjs` brings units, matrices and user-defined functions —
 * hundreds of kilobytes of surface to switch off for nine functions. The grammar is small enough to hold in view.
 *
 *   expression := term (("+" | "-") term)*
 *   term       := unary (("*" | "/" | "%") unary)*
 *   unary      := ("-" | "+") unary | primary
 *   primary    := number | "retried" | name "(" expression ("," expression)* ")" | "(" expression ")"
 */
type Node = (retried: number) => number;

const FUNCTIONS: Record<string, { arity: [number, number]; apply: (...args: number[]) => number }> = {
  pow: { arity: [2, 2], apply: (base, exponent) => base ** exponent },
  sqrt: { arity: [1, 1], apply: Math.sqrt },
  abs: { arity: [1, 1], apply: Math.abs },
  exp: { arity: [1, 1], apply: Math.exp },
  floor: { arity: [1, 1], apply: Math.floor },
  ceil: { arity: [1, 1], apply: Math.ceil },
  round: { arity: [1, 1], apply: Math.round },
  min: { arity: [1, Infinity], apply: Math.min },
  max: { arity: [1, Infinity], apply: Math.max },
};

// Long enough for any sensible expression, short enough that a hostile header cannot make parsing expensive.
const MAX_EXPRESSION_LENGTH = 256;

function tokenize(source: string): string[] {
  const tokens: string[] = [];
  const pattern = /\s*(?:(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|\.\d+)|([A-Za-z_]\w*)|([-+*/%(),]))/y;
  let index = 0;
  while (index < source.length) {
    if (/^\s*$/.test(source.slice(index))) break;
    pattern.lastIndex = index;
    const match = pattern.exec(source);
    if (!match) throw new Error(`unexpected character at ${index}: ${source.slice(index, index + 10)}`);
    tokens.push(match[1] ?? match[2] ?? match[3]);
    index = pattern.lastIndex;
  }
  return tokens;
}

function parse(tokens: string[]): Node {
  let position = 0;
  const peek = () => tokens[position];
  const expect = (token: string) => {
    if (tokens[position] !== token) throw new Error(`expected "${token}" but found ${tokens[position] ?? "the end"}`);
    position += 1;
  };

  function expression(): Node {
    let left = term();
    while (peek() === "+" || peek() === "-") {
      const operator = tokens[position++];
      const [a, b] = [left, term()];
      left = operator === "+" ? (r) => a(r) + b(r) : (r) => a(r) - b(r);
    }
    return left;
  }

  function term(): Node {
    let left = unary();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const operator = tokens[position++];
      const [a, b] = [left, unary()];
      left = operator === "*" ? (r) => a(r) * b(r) : operator === "/" ? (r) => a(r) / b(r) : (r) => a(r) % b(r);
    }
    return left;
  }

  function unary(): Node {
    if (peek() === "-") {
      position += 1;
      const operand = unary();
      return (r) => -operand(r);
    }
    if (peek() === "+") {
      position += 1;
      return unary();
    }
    return primary();
  }

  function primary(): Node {
    const token = tokens[position++];
    if (token === undefined) throw new Error("unexpected end of expression");
    if (token === "(") {
      const inner = expression();
      expect(")");
      return inner;
    }
    if (/^[\d.]/.test(token)) {
      const value = Number(token);
      return () => value;
    }
    if (token === "retried") return (r) => r;
    // Own properties only: a name such as "constructor" must not reach Object.prototype.
    const fn = Object.hasOwn(FUNCTIONS, token) ? FUNCTIONS[token] : undefined;
    if (!fn) throw new Error(`unknown name "${token}"`);
    expect("(");
    const args = [expression()];
    while (peek() === ",") {
      position += 1;
      args.push(expression());
    }
    expect(")");
    if (args.length < fn.arity[0] || args.length > fn.arity[1]) {
      throw new Error(`${token} takes ${fn.arity[0]}${fn.arity[1] === fn.arity[0] ? "" : " or more"} argument(s)`);
    }
    return (r) => fn.apply(...args.map((arg) => arg(r)));
  }

  const root = expression();
  if (position !== tokens.length) throw new Error(`unexpected "${tokens[position]}"`);
  return root;
}

/**
 * Compiles a retry-delay expression once, at publish time, so a malformed one is refused with 400 then rather than
 * discovered at the first failed delivery.
 */
export function compileRetryDelay(source: string): (retried: number) => number {
  try {
    if (source.length > MAX_EXPRESSION_LENGTH) throw new Error(`longer than ${MAX_EXPRESSION_LENGTH} characters`);
    const node = parse(tokenize(source));
    return (retried) => {
      const value = node(retried);
      // NaN, infinities and negative waits are no delay a scheduler can keep; retry at once instead.
      return Number.isFinite(value) && value > 0 ? value : 0;
    };
  } catch (error) {
    throw new HttpError(400, `invalid Upstash-Retry-Delay "${source}": ${(error as Error).message}`);
  }
}

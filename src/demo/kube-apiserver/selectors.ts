/**
 * Label and field selectors with the grammar of k8s.io/apimachinery
 * pkg/labels and pkg/fields: `a=b`, `a==b`, `a!=b`, `a in (x,y)`,
 * `a notin (x,y)`, `a` (exists), `!a` (does not exist), `a>1`, `a<1`,
 * comma-separated requirements all of which must hold.
 */
import { badRequest } from './status.js';

type Op = 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

/** A parsed selector; `matches` takes the object's labels (or selectable fields). */
export interface Selector {
  readonly empty: boolean;
  matches(set: Readonly<Record<string, string>>): boolean;
  /** The selector as text, for error messages and logs. */
  readonly text: string;
}

function matchRequirement(r: Requirement, set: Readonly<Record<string, string>>): boolean {
  const has = Object.prototype.hasOwnProperty.call(set, r.key);
  const v = has ? set[r.key] : undefined;
  switch (r.op) {
    case 'exists':
      return has;
    case '!exists':
      return !has;
    case '=':
    case 'in':
      return has && r.values.includes(v as string);
    case '!=':
    case 'notin':
      return !has || !r.values.includes(v as string);
    case 'gt':
    case 'lt': {
      if (!has || !/^-?\d+$/.test(v as string)) return false;
      const n = Number(v);
      const bound = Number(r.values[0]);
      return r.op === 'gt' ? n > bound : n < bound;
    }
  }
}

function selector(text: string, reqs: Requirement[]): Selector {
  return {
    text,
    empty: reqs.length === 0,
    matches: (set) => reqs.every((r) => matchRequirement(r, set)),
  };
}

/** The characters a label key or value may have (the real checks are narrower; this is for tokenizing). */
const WORD = /^[A-Za-z0-9._\-/]+/;

/** Parse a label selector; a syntax error is a 400 as the real server gives. */
export function parseLabelSelector(text: string | null): Selector {
  const src = text ?? '';
  const reqs: Requirement[] = [];
  let i = 0;
  const skip = (): void => {
    while (i < src.length && src[i] === ' ') i++;
  };
  const fail = (what: string): never => {
    throw badRequest(`unable to parse requirement: ${what}`);
  };
  const word = (): string => {
    skip();
    const m = WORD.exec(src.slice(i));
    if (!m) fail(`found '${src[i] ?? ''}', expected: identifier`);
    i += m![0].length;
    return m![0];
  };
  const valueSet = (): string[] => {
    skip();
    if (src[i] !== '(') fail(`found '${src[i] ?? ''}', expected: '('`);
    i++;
    const values: string[] = [];
    for (;;) {
      skip();
      if (src[i] === ')') {
        i++;
        return values;
      }
      const m = WORD.exec(src.slice(i));
      values.push(m ? m[0] : '');
      if (m) i += m[0].length;
      skip();
      if (src[i] === ',') i++;
      else if (src[i] !== ')') fail(`found '${src[i] ?? ''}', expected: ',' or ')'`);
    }
  };
  skip();
  if (i >= src.length) return selector(src, reqs);
  for (;;) {
    skip();
    if (src[i] === '!') {
      i++;
      reqs.push({ key: word(), op: '!exists', values: [] });
    } else {
      const key = word();
      skip();
      const rest = src.slice(i);
      if (rest === '' || rest[0] === ',') {
        reqs.push({ key, op: 'exists', values: [] });
      } else if (rest.startsWith('==') || rest.startsWith('!=') || rest[0] === '=') {
        const op = rest.startsWith('!=') ? '!=' : '=';
        i += rest.startsWith('==') || rest.startsWith('!=') ? 2 : 1;
        skip();
        const m = WORD.exec(src.slice(i));
        const value = m ? m[0] : '';
        i += value.length;
        reqs.push({ key, op, values: [value] });
      } else if (rest[0] === '>' || rest[0] === '<') {
        i++;
        const bound = word();
        if (!/^-?\d+$/.test(bound)) fail(`for 'gt', 'lt' operators, the value must be an integer`);
        reqs.push({ key, op: rest[0] === '>' ? 'gt' : 'lt', values: [bound] });
      } else if (/^notin[\s(]/.test(rest)) {
        i += 5;
        reqs.push({ key, op: 'notin', values: valueSet() });
      } else if (/^in[\s(]/.test(rest)) {
        i += 2;
        reqs.push({ key, op: 'in', values: valueSet() });
      } else {
        fail(`found '${rest.split(/[\s,]/)[0]}', expected: in, notin, =, ==, !=, gt, lt`);
      }
    }
    skip();
    if (i >= src.length) break;
    if (src[i] !== ',') fail(`found '${src[i]}', expected: ',' or 'end of string'`);
    i++;
  }
  return selector(src, reqs);
}

/**
 * Parse a field selector (`metadata.name=web,metadata.namespace!=x`); a field
 * the resource does not offer is a 400 `field label not supported`.
 */
export function parseFieldSelector(text: string | null, supported: readonly string[]): Selector {
  const src = text ?? '';
  const reqs: Requirement[] = [];
  if (src.trim() !== '') {
    for (const part of src.split(',')) {
      const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(part);
      if (!m) throw badRequest(`invalid selector: '${src}'; can't understand '${part}'`);
      const [, key, op, value] = m as unknown as [string, string, string, string];
      if (!supported.includes(key)) throw badRequest(`field label not supported: ${key}`);
      reqs.push({ key, op: op === '!=' ? '!=' : '=', values: [value] });
    }
  }
  return selector(src, reqs);
}

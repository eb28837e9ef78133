import { createColors } from 'colorette';

/**
 * Colour only for people: on a TTY, and never when NO_COLOR is set
 * (https://no-color.org) or the terminal is dumb.
 */
export function useColor(stream: NodeJS.WriteStream | { isTTY?: boolean }): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0') return true;
  return Boolean(stream.isTTY) && process.env.TERM !== 'dumb';
}

export interface Style {
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  dim(text: string): string;
  bold(text: string): string;
  cyan(text: string): string;
}

/**
 * The colours, from colorette (listr2 already uses it; it also keeps nested
 * styles right). Whether to colour is `useColor`'s decision, not colorette's:
 * colorette decides once, for stdout, and the views also write to stderr.
 *
 * @example
 * style(useColor(process.stderr)).red('failed')
 */
export function style(color: boolean): Style {
  const { red, green, yellow, dim, bold, cyan } = createColors({ useColor: color });
  return { red, green, yellow, dim, bold, cyan };
}

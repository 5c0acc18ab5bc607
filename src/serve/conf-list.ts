// How rsyncd.conf list values are split (`gid`, `auth users`): white space and commas, or commas
// alone when the value starts with one (so an entry may contain spaces). docs/protocol.md [auth].
// Counterpart: rsync util1.c conf_strtok.

const SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;

/** The entries of a list parameter, as successive conf_strtok calls return them. */
// rsync/util1.c: conf_strtok
export function confStrtok(text: string): string[] {
  const s = text.replace(/^[ \t\n\v\f\r]+/, '');
  if (s.startsWith(',')) {
    return s
      .slice(1)
      .split(',')
      .map((t) => t.replace(SPACE, ''))
      .filter(Boolean);
  }
  return s.split(/[ ,\t\r\n]+/).filter(Boolean);
}

// Collapsing a batch: several events for one path become at most one, judged by what the
// path was before the batch and what it is after it. Order of first appearance is kept.
// Moves, rescans and root-gone events are barriers: nothing is merged across them.
//
//   existed before? | exists after? | result
//   no              | no            | nothing           (create ... delete: rapid create-then-delete)
//   yes             | no            | delete
//   no              | yes           | create
//   yes             | yes           | create if it was deleted and re-created in between,
//                                     else modify if its content changed, else attrib

import type { WatchEvent } from './types.js';

interface PathState {
  existed: boolean;
  exists: boolean;
  replaced: boolean;
  modified: boolean;
  isDir: boolean;
  slot: number;
}

export function collapse(events: readonly WatchEvent[]): WatchEvent[] {
  const out: WatchEvent[] = [];
  let states = new Map<string, PathState>();
  let slots: (WatchEvent | null)[] = [];

  const flush = (): void => {
    for (const [path, s] of states) {
      let type: WatchEvent['type'] | null;
      if (!s.existed) type = s.exists ? 'create' : null;
      else if (!s.exists) type = 'delete';
      else type = s.replaced ? 'create' : s.modified ? 'modify' : 'attrib';
      slots[s.slot] = type === null ? null : { type, path, isDir: s.isDir };
    }
    for (const e of slots) if (e !== null) out.push(e);
    states = new Map();
    slots = [];
  };

  for (const e of events) {
    if (e.type === 'move' || e.type === 'rescan' || e.type === 'root-gone') {
      flush();
      out.push(e);
      continue;
    }
    let s = states.get(e.path);
    if (s === undefined) {
      s = { existed: e.type !== 'create', exists: true, replaced: false, modified: false, isDir: e.isDir, slot: slots.length };
      slots.push(null);
      states.set(e.path, s);
    }
    switch (e.type) {
      case 'create':
        if (s.existed && !s.exists) s.replaced = true;
        s.exists = true;
        s.isDir = e.isDir;
        break;
      case 'delete':
        s.exists = false;
        s.modified = false;
        s.isDir = e.isDir;
        break;
      case 'modify':
        s.exists = true;
        s.modified = true;
        break;
      case 'attrib':
        s.exists = true;
        break;
    }
  }
  flush();
  return out;
}

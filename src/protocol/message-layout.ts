// The `message` frame's JSON layout, written once: frames.ts concatenates these
// pieces in JS and the Redis engine generates its publish script's Lua
// concatenation from them, so a frame delivered live, read from memory history
// or read from Redis history is the same bytes. No imports: both sides load it.
//
// The fields go between the pieces, in this order: channel and id are inserted
// raw (the channel pattern and the id format need no JSON escaping), from is
// `null` or a JSON string, data is already JSON, ts is an integer.

export const MESSAGE_BEFORE_CHANNEL = '{"type":"message","channel":"'
export const MESSAGE_BEFORE_ID = '","id":"'
export const MESSAGE_BEFORE_FROM = '","from":'
export const MESSAGE_BEFORE_DATA = ',"data":'
export const MESSAGE_BEFORE_TS = ',"ts":'
export const MESSAGE_END = '}'

/** The pieces in order: before channel, before id, before from, before data, before ts, end. */
export const MESSAGE_LAYOUT = [
  MESSAGE_BEFORE_CHANNEL, MESSAGE_BEFORE_ID, MESSAGE_BEFORE_FROM, MESSAGE_BEFORE_DATA, MESSAGE_BEFORE_TS, MESSAGE_END
] as const

/**
 * What the pages need to know about API keys, outside any `.server` module: the browser bundle gets an empty stand-in
 * for those, so a constant imported from one is `undefined` when React hydrates, and an attribute built from it
 * (the name field's `maxlength`) would differ from the server's HTML.
 */
export const API_KEY_PREFIX = "sm_live_";

export const MAX_KEY_NAME_LENGTH = 60;

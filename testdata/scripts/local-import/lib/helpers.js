export const shout = (s) => String(s).toUpperCase() + "!";

export const secret = "outside the scripts directory";

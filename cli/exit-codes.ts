/** Exit code for invalid input (usage, schema or configuration errors). */
export const exitInvalid = 2;

cat {{upstream['summarize']}} > {{product}}

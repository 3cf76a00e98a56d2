"""DLwP 1st ed., ch. 7.1.2: the two-input question-answering model, fed from a list, then a dict.

Written after the chapter's example (it has no companion notebook), with Keras 2's imports; 200
samples of length 20 in place of the chapter's 1,000 of length 100.
"""

import numpy as np
from keras import Input, layers
from keras.models import Model
from keras.utils import to_categorical

text_vocabulary_size = 10000
question_vocabulary_size = 10000
answer_vocabulary_size = 500

text_input = Input(shape=(None,), dtype="int32", name="text")
embedded_text = layers.Embedding(text_vocabulary_size, 64)(text_input)
encoded_text = layers.LSTM(32)(embedded_text)

question_input = Input(shape=(None,), dtype="int32", name="question")
embedded_question = layers.Embedding(question_vocabulary_size, 32)(question_input)
encoded_question = layers.LSTM(16)(embedded_question)

concatenated = layers.concatenate([encoded_text, encoded_question], axis=-1)
answer = layers.Dense(answer_vocabulary_size, activation="softmax")(concatenated)

model = Model([text_input, question_input], answer)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"])

num_samples = 200
max_length = 20
text = np.random.randint(1, text_vocabulary_size, size=(num_samples, max_length))
question = np.random.randint(1, question_vocabulary_size, size=(num_samples, max_length))
answers = np.random.randint(0, answer_vocabulary_size, size=num_samples)
answers = to_categorical(answers, answer_vocabulary_size)

model.fit([text, question], answers, epochs=1, batch_size=128)
model.fit({"text": text, "question": question}, answers, epochs=1, batch_size=128)
